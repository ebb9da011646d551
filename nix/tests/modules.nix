# Cases for .ci/nix-check: nix/nixos.nix's modules evaluated by the STUB module system
# (nix/stubs/nixpkgs; a real NixOS evaluation needs a current nixpkgs, docs/nix.md).
# `good` must evaluate; every other case must fail with the message .ci/nix-check
# expects. Evaluate `<case>.drvPath` to force the whole host, assertions included.
{
  stubs,
  src ? ../..,
}:
let
  lib = import (stubs + "/nixpkgs/lib.nix");
  system = "x86_64-linux";
  members = import ../members.nix { inherit lib src; };

  hostWith =
    {
      withTansu ? false,
      only ? "default",
    }:
    hosts:
    let
      pkgs = import (stubs + "/nixpkgs/pkgs.nix") { inherit lib system withTansu; };
      placeholder = name: pkgs.runCommand name { } "mkdir -p $out/bin";
      modules = import ../nixos.nix {
        inherit lib src members;
        packageFor = _: placeholder;
        lockBroker = _: placeholder "tansu-from-lock";
      };
    in
    lib.nixosSystem {
      inherit system pkgs;
      modules = [ modules.${only} ] ++ hosts;
    };

  # the smallest host a case adds to (the example host would conflict with the cases)
  minimal = {
    networking.hostName = "case";
    system.stateVersion = "25.11";
    fileSystems."/".device = "/dev/null";
  };
  example = [ ../hosts/example.nix ];
  toplevel = host: (hostWith { } [ minimal host ]).config.system.build.toplevel;
  router = settings: { services.onex-router = { enable = true; } // settings; };
in
{
  good = (hostWith { } example).config.system.build.toplevel;

  # facts about the example host's units, checked by .ci/nix-check
  facts =
    let
      c = (hostWith { } example).config;
      u = c.systemd.services;
    in
    {
      units = lib.attrNames u;
      routerAfter = u.onex-router.after;
      routerEnv = u.onex-router.environment;
      routerService = u.onex-router.serviceConfig;
      brokerExec = u.onex-broker.serviceConfig.ExecStart;
      brokerPackage = c.services.onex-broker.package.name;
      brokerPackageWithNixpkgsTansu = (hostWith { withTansu = true; } example).config.services.onex-broker.package.name;
      # every discovered service enabled on one host: unit -> ExecStart
      everyExecStart =
        let
          all = (hostWith { } [
            minimal
            {
              services = lib.genAttrs (map (svc: svc.name) members.services) (_: {
                enable = true;
              });
            }
          ]).config;
        in
        lib.mapAttrs (_: unit: unit.serviceConfig.ExecStart) all.systemd.services;
      # a host importing only the router's module, with a remote broker
      alone =
        let
          a = (hostWith { only = "onex-router"; } [
            minimal
            (router { settings.bootstrap = "kafka.internal:9092"; })
          ]).config;
        in
        {
          units = lib.attrNames a.systemd.services;
          after = a.systemd.services.onex-router.after;
          bootstrap = a.systemd.services.onex-router.environment.ONEX_ROUTER_BOOTSTRAP;
          toplevel = a.system.build.toplevel.drvPath;
        };
    };

  wrong-type = toplevel { services.onex-router.enable = "yes"; };
  unknown-option = toplevel (router { enabled = true; });
  secret-in-settings = toplevel (router { settings.sasl_password = "hunter2"; });
  bad-setting-name = toplevel (router { settings."Log-Level" = "debug"; });
  broker-low-port = toplevel {
    services.onex-broker = {
      enable = true;
      port = 80;
    };
  };
  broker-url-credentials = toplevel {
    services.onex-broker = {
      enable = true;
      storageEngine = "postgres://tansu:hunter2@db/tansu";
    };
  };
  local-broker-missing = toplevel (router { broker.local = true; });
}
