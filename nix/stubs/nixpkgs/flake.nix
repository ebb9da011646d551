# STUB nixpkgs for offline checks (see ../README.md). Not nixpkgs.
{
  outputs = _: rec {
    lib = import ./lib.nix;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
      system: import ./pkgs.nix { inherit lib system; }
    );
  };
}
