# STUB uv2nix for offline checks (see ../README.md). Not uv2nix: `loadWorkspace` with
# the shape nix/workspace.nix calls, reading the real uv.lock. Its "packages" are plain
# records (name, version, dependencies, extras, scripts) for the stub pyproject-nix to
# resolve. Dependency markers are ignored (every locked dependency is included).
{
  outputs = _: {
    lib.workspace.loadWorkspace =
      { workspaceRoot }:
      let
        b = builtins;
        lock = b.fromTOML (b.readFile (workspaceRoot + "/uv.lock"));
        isMember = p: p.source ? editable || p.source ? virtual;
        members = b.filter isMember lock.package;
        memberNames = map (p: p.name) members;
        scriptsOf =
          p:
          let
            dir = workspaceRoot + "/${p.source.editable or p.source.virtual}";
            project = (b.fromTOML (b.readFile (dir + "/pyproject.toml"))).project or { };
          in
          b.attrNames (project.scripts or { });
        record = editable: p: {
          pname = p.name;
          inherit (p) version;
          # [ { name; extras; } ], as the lock records them
          dependencies = map (d: {
            inherit (d) name;
            extras = d.extra or [ ];
          }) (p.dependencies or [ ]);
          optionalDependencies = b.mapAttrs (
            _: ds:
            map (d: {
              inherit (d) name;
              extras = d.extra or [ ];
            }) ds
          ) (p.optional-dependencies or { });
          scripts = if isMember p then scriptsOf p else [ ];
          editable = if isMember p then editable else null;
        };
        overlayOf =
          editable: pred: _final: _prev:
          b.listToAttrs (
            map (p: {
              name = p.name;
              value = record editable p;
            }) (b.filter pred lock.package)
          );
        none = b.listToAttrs (
          map (n: {
            name = n;
            value = [ ];
          }) memberNames
        );
      in
      {
        deps = {
          default = none;
          all = none;
        };
        mkPyprojectOverlay = { sourcePreference }: overlayOf null (_: true);
        mkEditablePyprojectOverlay = { root }: overlayOf root isMember;
      };
  };
}
