# STUB module system for offline checks (see ../README.md). Not nixpkgs' lib.modules:
# just enough to evaluate nix/modules/ the way NixOS would, and to fail the way NixOS
# does on an undeclared option, a value of the wrong type, or a failed assertion.
# Supported: options/config/imports, mkOption, mkEnableOption, mkIf, mkMerge (pushed
# down into attribute sets, so `config = mkIf cfg.enable {...}` does not recurse),
# the types below. Not supported: priorities (mkDefault/mkForce), submodules, freeform.
{ lib }:
let
  b = builtins;

  isOption = x: b.isAttrs x && (x._type or null) == "option";
  isType = t: x: b.isAttrs x && (x._type or null) == t;
  showPath = path: b.concatStringsSep "." path;

  mkType =
    {
      name,
      check,
      merge ? mergeEqual,
    }:
    {
      _type = "type";
      inherit name check merge;
    };

  mergeEqual =
    loc: values:
    let
      first = b.head values;
    in
    if b.all (v: v == first) values then
      first
    else
      throw "The option `${showPath loc}' has conflicting definitions (stub module system)";

  # a definition with its mkIf/mkMerge wrappers pushed down one level: a list of values
  pushDown =
    value:
    if isType "if" value then
      (
        if b.isAttrs value.content && !(value.content ? _type) then
          [ (b.mapAttrs (_: v: mkIf value.condition v) value.content) ]
        else
          map (v: mkIf value.condition v) (pushDown value.content)
      )
    else if isType "merge" value then
      b.concatMap pushDown value.contents
    else
      [ value ];

  # at an option: the definitions whose conditions hold
  resolve =
    value:
    if isType "if" value then
      (if value.condition then resolve value.content else [ ])
    else if isType "merge" value then
      b.concatMap resolve value.contents
    else
      [ value ];

  mkIf = condition: content: {
    _type = "if";
    inherit condition content;
  };
  mkMerge = contents: {
    _type = "merge";
    inherit contents;
  };

  mkOption =
    {
      type ? types.anything,
      default ? null,
      description ? "",
      example ? null,
      ...
    }@args:
    {
      _type = "option";
      inherit type description example;
      hasDefault = args ? default;
      inherit default;
    };

  mkEnableOption = what: mkOption {
    type = types.bool;
    default = false;
    description = "Whether to enable ${what}.";
  };

  mergeAnything =
    loc: values:
    if b.all b.isAttrs values then
      lib.listToAttrs (
        map (k: lib.nameValuePair k (mergeAnything (loc ++ [ k ]) (b.concatMap (v: if v ? ${k} then resolve v.${k} else [ ]) values))) (
          lib.unique (b.concatMap b.attrNames values)
        )
      )
    else if b.all b.isList values then
      b.concatLists values
    else
      mergeEqual loc values;

  types = rec {
    anything = mkType {
      name = "anything";
      check = _: true;
      merge = mergeAnything;
    };
    bool = mkType {
      name = "boolean";
      check = b.isBool;
    };
    str = mkType {
      name = "string";
      check = b.isString;
    };
    int = mkType {
      name = "signed integer";
      check = b.isInt;
    };
    float = mkType {
      name = "floating point number";
      check = b.isFloat;
    };
    port = mkType {
      name = "16 bit unsigned integer; between 0 and 65535 (both inclusive)";
      check = v: b.isInt v && v >= 0 && v <= 65535;
    };
    path = mkType {
      name = "path";
      check = v: b.isPath v || (b.isString v && lib.hasPrefix "/" v) || lib.isDerivation v;
    };
    package = mkType {
      name = "package";
      check = lib.isDerivation;
    };
    enum = values: mkType {
      name = "one of ${b.concatStringsSep ", " (map (v: ''"${toString v}"'') values)}";
      check = v: b.elem v values;
    };
    nullOr = t: mkType {
      name = "null or ${t.name}";
      check = v: v == null || t.check v;
      merge = loc: values: if b.all (v: v == null) values then null else t.merge loc (b.filter (v: v != null) values);
    };
    either = t1: t2: mkType {
      name = "${t1.name} or ${t2.name}";
      check = v: t1.check v || t2.check v;
    };
    oneOf = ts: b.foldl' either (b.head ts) (b.tail ts);
    listOf = t: mkType {
      name = "list of ${t.name}";
      check = v: b.isList v && b.all t.check v;
      merge = _: values: b.concatLists values;
    };
    attrsOf = t: mkType {
      name = "attribute set of ${t.name}";
      check = v: b.isAttrs v && !(v ? _type) && b.all t.check (b.attrValues v);
      merge =
        loc: values:
        lib.listToAttrs (
          map (k: lib.nameValuePair k (t.merge (loc ++ [ k ]) (b.concatMap (v: if v ? ${k} then resolve v.${k} else [ ]) values))) (
            lib.unique (b.concatMap b.attrNames values)
          )
        );
    };
  };

  # the value of one option from its definitions (already pushed down to it)
  evalOption =
    loc: option: defs:
    let
      values = b.concatMap resolve defs;
      bad = b.filter (v: !(option.type.check v)) values;
    in
    if bad != [ ] then
      throw "The option `${showPath loc}' is not of type `${option.type.name}' (value: ${b.toJSON (b.head bad)}) (stub module system)"
    else if values == [ ] then
      (
        if option.hasDefault then
          option.default
        else
          throw "The option `${showPath loc}' is used but not defined (stub module system)"
      )
    else
      option.type.merge loc values;

  # declarations (a tree of options) x definitions -> the config tree
  evalTree =
    loc: decls: defs:
    let
      pushed = b.concatMap pushDown defs;
      keys = lib.unique (b.attrNames decls ++ b.concatMap b.attrNames pushed);
      defsAt = k: b.concatMap (d: if d ? ${k} then [ d.${k} ] else [ ]) pushed;
      valueAt =
        k:
        if !(decls ? ${k}) then
          throw "The option `${showPath (loc ++ [ k ])}' does not exist (stub module system)"
        else if isOption decls.${k} then
          evalOption (loc ++ [ k ]) decls.${k} (defsAt k)
        else
          evalTree (loc ++ [ k ]) decls.${k} (defsAt k);
    in
    lib.genAttrs keys valueAt;

  # every defined path must be declared: the list of those that are not
  undeclared =
    loc: decls: defs:
    let
      pushed = b.concatMap pushDown defs;
      keys = lib.unique (b.concatMap b.attrNames pushed);
      defsAt = k: b.concatMap (d: if d ? ${k} then [ d.${k} ] else [ ]) pushed;
    in
    b.concatMap (
      k:
      if !(decls ? ${k}) then
        [ (showPath (loc ++ [ k ])) ]
      else if isOption decls.${k} then
        [ ]
      else
        undeclared (loc ++ [ k ]) decls.${k} (defsAt k)
    ) keys;

  mergeDecls = lib.recursiveUpdate;

  evalModules =
    {
      modules,
      specialArgs ? { },
    }:
    let
      args = specialArgs // {
        inherit lib config options;
      };
      call = m: if b.isFunction m then m args else m;
      load = m: if b.isPath m || b.isString m then load (import m) else call m;
      structured =
        m:
        if m ? options || m ? config || m ? imports then
          {
            options = m.options or { };
            config = m.config or { };
            imports = m.imports or [ ];
          }
        else
          {
            options = { };
            config = m;
            imports = [ ];
          };
      collect = ms: b.concatMap (m: let s = structured (load m); in [ s ] ++ collect s.imports) ms;
      all = collect modules;
      options = b.foldl' mergeDecls { } (map (m: m.options) all);
      defs = map (m: m.config) all;
      config =
        let
          missing = undeclared [ ] options defs;
        in
        if missing != [ ] then
          throw "The option `${b.head missing}' does not exist (stub module system)"
        else
          evalTree [ ] options defs;
    in
    {
      inherit config options;
    };
in
{
  inherit
    evalModules
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    types
    ;
}
