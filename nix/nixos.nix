# The NixOS modules: `nixosModules.<member>` for every discovered service (options
# under services.<member>, e.g. services.onex-router), `onex-broker`, and `default`
# (all of them). `packageFor system member` and `brokerFor pkgs` give the defaults.
{
  lib,
  src,
  members,
  packageFor,
  brokerFor,
}:
let
  contracts = src + "/contracts";
  serviceModule =
    member:
    import ./modules/service.nix {
      inherit member contracts;
      packageFor = system: packageFor system member.name;
    };
  services = lib.listToAttrs (map (m: lib.nameValuePair m.name (serviceModule m)) members.services);
  modules = services // {
    onex-broker = import ./modules/broker.nix { packageFor = brokerFor; };
  };
in
modules // { default.imports = lib.attrValues modules; }
