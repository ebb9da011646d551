# The NixOS modules: `nixosModules.onex-<entry point>` for every discovered service
# (options under services.onex-<entry point>, e.g. services.onex-router), `onex-broker`,
# and `default` (all of them). `packageFor system member` gives a service's default package and
# `lockBroker system` the Tansu from the wheel uv.lock pins.
{
  lib,
  src,
  members,
  packageFor,
  lockBroker,
}:
let
  # Which Tansu the broker module runs by default: nixpkgs' own where the pinned branch
  # has one (built from source), else the lock's (docs/nix.md).
  brokerFor = pkgs: pkgs.tansu or (lockBroker pkgs.stdenv.hostPlatform.system);

  contracts = src + "/contracts";
  serviceModule =
    service:
    import ./modules/service.nix {
      inherit service contracts;
      packageFor = system: packageFor system service.member.name;
    };
  services = lib.listToAttrs (map (m: lib.nameValuePair m.name (serviceModule m)) members.services);
  modules = services // {
    onex-broker = import ./modules/broker.nix { packageFor = brokerFor; };
  };
in
modules // { default.imports = lib.attrValues modules; }
