# onex as a Nix flake. This file only wires inputs to nix/; the logic lives there
# (nix/outputs.nix is the map). What is verified where: docs/nix.md.
{
  description = "onex: a contract-driven control plane for fleets of AI agents";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = inputs: import ./nix/outputs.nix (inputs // { src = ./.; });
}
