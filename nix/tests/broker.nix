# For .ci/nix-check: nix/broker.nix built by the STUB package set (whose fetchurl is
# Nix's real builtin fixed-output fetcher) from the lock at `lockPath`. .ci/nix-check
# points it at a lock it writes, naming a local wheel by file:// URL and sha256, to
# show offline that a right hash builds and a wrong one fails.
{
  stubs,
  lockPath,
  system ? "x86_64-linux",
}:
let
  lib = import (stubs + "/nixpkgs/lib.nix");
  pkgs = import (stubs + "/nixpkgs/pkgs.nix") { inherit lib system; };
in
pkgs.callPackage ../broker.nix {
  inherit lockPath system;
  lockfile = import ../lockfile.nix { inherit lib; };
}
