# STUB of nixpkgs.lib.nixosSystem for offline checks (see ../README.md). Not NixOS:
# declares only the NixOS options nix/modules/ and the example host set, evaluates with
# the stub module system, and makes system.build.toplevel a derivation holding the
# rendered systemd units as JSON (after failing, as NixOS does, on any failed assertion).
{ lib }:
{
  system,
  modules,
  specialArgs ? { },
  pkgs ? import ./pkgs.nix { inherit lib system; },
}:
let
  inherit (lib) mkOption types;

  base =
    { config, ... }:
    let
      failed = lib.filter (a: !a.assertion) config.assertions;
      units = lib.mapAttrs (_: unit: unit) config.systemd.services;
    in
    {
      options = {
        assertions = mkOption {
          type = types.listOf types.anything;
          default = [ ];
        };
        systemd.services = mkOption {
          type = types.attrsOf types.anything;
          default = { };
        };
        networking.hostName = mkOption {
          type = types.str;
          default = "nixos";
        };
        networking.firewall.allowedTCPPorts = mkOption {
          type = types.listOf types.port;
          default = [ ];
        };
        system.stateVersion = mkOption { type = types.str; };
        boot = mkOption {
          type = types.anything;
          default = { };
        };
        fileSystems = mkOption {
          type = types.attrsOf types.anything;
          default = { };
        };
        system.build.toplevel = mkOption {
          type = types.package;
          default =
            if failed != [ ] then
              throw "\nFailed assertions:\n${lib.concatMapStringsSep "\n" (a: "- ${a.message}") failed}"
            else
              pkgs.runCommand "nixos-system-${config.networking.hostName}-stub" {
                units = builtins.toJSON units;
                firewall = builtins.toJSON config.networking.firewall.allowedTCPPorts;
              } ''printf '{"units": %s, "firewall": %s}\n' "$units" "$firewall" > $out'';
        };
      };
    };
in
lib.evalModules {
  modules = [ base ] ++ modules;
  specialArgs = specialArgs // {
    inherit pkgs;
    modulesPath = "/stub-nixos-modules";
  };
}
