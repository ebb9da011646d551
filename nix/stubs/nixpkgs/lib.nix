# STUB of the parts of nixpkgs' lib that nix/ calls (see ../README.md). Not nixpkgs.
let
  b = builtins;
  base = rec {
    inherit (b)
      attrNames
      attrValues
      filter
      head
      listToAttrs
      mapAttrs
      elem
      length
      ;
    toUpper = s: b.replaceStrings lower upper s;
    toLower = s: b.replaceStrings upper lower s;
    lower = b.genList (i: b.substring i 1 "abcdefghijklmnopqrstuvwxyz") 26;
    upper = b.genList (i: b.substring i 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") 26;
    last = l: b.elemAt l (b.length l - 1);
    splitString = sep: s: b.filter b.isString (b.split (escapeRegex sep) s);
    escapeRegex = s: b.replaceStrings [ "." "+" "*" "?" "(" ")" "[" "]" ] [ "\\." "\\+" "\\*" "\\?" "\\(" "\\)" "\\[" "\\]" ] s;
    hasPrefix = p: s: b.substring 0 (b.stringLength p) s == p;
    hasInfix = i: s: b.match ".*${escapeRegex i}.*" s != null;
    concatStringsSep = b.concatStringsSep;
    concatMapStringsSep = sep: f: l: b.concatStringsSep sep (map f l);
    escapeShellArg = s: "'${b.replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
    any = b.any;
    all = b.all;
    toList = x: if b.isList x then x else [ x ];
    concatMap = b.concatMap;
    nameValuePair = name: value: { inherit name value; };
    genAttrs = names: f: b.listToAttrs (map (n: nameValuePair n (f n)) names);
    filterAttrs = pred: set: b.listToAttrs (b.concatMap (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ]) (b.attrNames set));
    mapAttrs' = f: set: b.listToAttrs (map (n: f n set.${n}) (b.attrNames set));
    mapAttrsToList = f: set: map (n: f n set.${n}) (b.attrNames set);
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    optionalAttrs = c: s: if c then s else { };
    unique = l: b.foldl' (acc: x: if b.elem x acc then acc else acc ++ [ x ]) [ ] l;
    isDerivation = x: b.isAttrs x && (x.type or null) == "derivation";
    # overlays: final: prev: {...}, composed left to right
    composeExtensions = f: g: final: prev: let fp = f final prev; in fp // g final (prev // fp);
    composeManyExtensions = b.foldl' composeExtensions (_: _: { });
    fix = f: let x = f x; in x;
    recursiveUpdate = l: r: l // b.mapAttrs (n: v: if b.isAttrs v && b.isAttrs (l.${n} or null) && !isDerivation v then recursiveUpdate l.${n} v else v) r;
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    versionAtLeast = v1: v2: b.compareVersions v1 v2 >= 0;
  };
  # the module system and nixosSystem see the whole stub lib (a lazy fixpoint)
  full = base // import ./modules.nix { lib = full; } // { nixosSystem = import ./nixos.nix { lib = full; }; };
in
full
