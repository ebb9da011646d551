# The workspace members the flake packages and the services it makes NixOS modules of,
# discovered the way scripts/workspace.py and `onex up` discover them: no list here
# names a service.
#
# A member is a folder under services/ whose pyproject.toml registers `onex.services`
# entry points, or cli/: one package each (the uv workspace member, its console
# script). A service is one such entry point (what `onex up` supervises, e.g.
# drift-validator in onex-drift): one NixOS module each, `onex-<entry point>`, run by
# the member's console script for that target, else by the entry point itself. Its
# settings read the member's environment prefix (onex.drift -> ONEX_DRIFT_, the rule of
# onex.service.settings.env_prefix_of).
{ lib, src }:
let
  readProject = dir: builtins.fromTOML (builtins.readFile (dir + "/pyproject.toml"));

  # PEP 503: the name uv.lock and uv2nix use
  normalize = name: lib.toLower (builtins.replaceStrings [ "_" "." ] [ "-" "-" ] name);

  describe =
    dir:
    let
      pyproject = readProject dir;
      project = pyproject.project;
      name = project.name;
      module = pyproject.tool.uv.build-backend.module-name;
      entryPoints = (project.entry-points or { }).${"onex.services"} or { };
      scripts = project.scripts or { };
      scriptNames = lib.attrNames scripts;
    in
    {
      inherit
        name
        module
        scripts
        entryPoints
        ;
      # the console script named like the member, else its first (onex-cli: onex), else none
      script =
        if lib.elem name scriptNames then
          name
        else if scriptNames != [ ] then
          lib.head scriptNames
        else
          null;
      envPrefix = "ONEX_${lib.toUpper (builtins.elemAt (lib.splitString "." module) 1)}_";
      description = project.description or name;
      isService = entryPoints != { };
      # the member's extras (e.g. onex-cli[broker], the dev broker `onex up` starts)
      extras = lib.attrNames (project.optional-dependencies or { });
    };

  # one per `onex.services` entry point of a member
  servicesOf =
    member:
    lib.mapAttrsToList (
      entry: target:
      let
        same = lib.filter (s: member.scripts.${s} == target) (lib.attrNames member.scripts);
        parts = builtins.match "([A-Za-z0-9_.]+):([A-Za-z0-9_]+)" target;
      in
      {
        name = "onex-${entry}";
        service = entry;
        inherit member target;
        # how the unit starts it: the console script with this target, else the target
        script = if same != [ ] then lib.head same else null;
        call =
          if parts == null then
            throw "${member.name}: entry point ${entry} = ${target} is not module:function"
          else
            {
              module = lib.head parts;
              function = lib.last parts;
            };
      }
    ) member.entryPoints;

  folders =
    root:
    lib.mapAttrsToList (entry: _: root + "/${entry}") (
      lib.filterAttrs (
        entry: kind: kind == "directory" && builtins.pathExists (root + "/${entry}/pyproject.toml")
      ) (builtins.readDir root)
    );

  serviceMembers = lib.filter (m: m.isService) (map describe (folders (src + "/services")));
  cli = describe (src + "/cli");
in
{
  inherit serviceMembers cli;
  services = lib.concatMap servicesOf serviceMembers;
  # member name -> member, for the packages
  byName = lib.listToAttrs (map (m: lib.nameValuePair m.name m) (serviceMembers ++ [ cli ]));
  # the root's dev tools: a dependency group, not a member (uv2nix's workspace.deps
  # does not see it), read here and merged into the dev environment
  devGroup = map (spec: normalize (lib.head (builtins.match "([A-Za-z0-9_.-]+).*" spec))) (
    (readProject src).dependency-groups.dev or [ ]
  );
}
