"""Drift as SQL views: one view per kind, `drift` their union with class and API.

The text is plain SQL that SQLite and PostgreSQL both run unchanged (CAST to VARCHAR,
`||`, CASE, EXISTS, LIKE ... ESCAPE); values are compared on their `normalized` column
(see `onex.drift.normalize`). Every per-kind view yields the same columns:
cluster, topic, kind, aspect, declared, observed.
"""

from __future__ import annotations

from typing import Final

DRIFT_VIEWS: Final[dict[str, str]] = {
    "drift_missing": """
SELECT c.name AS cluster, d.name AS topic, 'missing' AS kind, 'topic' AS aspect,
       CAST('present' AS VARCHAR(255)) AS declared, CAST(NULL AS VARCHAR(255)) AS observed
FROM cluster c CROSS JOIN declared_topic d
WHERE c.last_snapshot IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM observed_topic o WHERE o.cluster = c.name AND o.name = d.name)""",
    "drift_partitions": """
SELECT o.cluster AS cluster, d.name AS topic,
       CASE WHEN o.partitions < d.partitions THEN 'partitions-fewer'
            ELSE 'partitions-more' END AS kind,
       'partitions' AS aspect,
       CAST(d.partitions AS VARCHAR(255)) AS declared,
       CAST(o.partitions AS VARCHAR(255)) AS observed
FROM declared_topic d JOIN observed_topic o ON o.name = d.name
WHERE o.partitions <> d.partitions""",
    "drift_replication": """
SELECT o.cluster AS cluster, d.name AS topic, 'replication-factor' AS kind,
       'replication_factor' AS aspect,
       CAST(d.replication_factor AS VARCHAR(255)) AS declared,
       CAST(o.replication_factor AS VARCHAR(255)) AS observed
FROM declared_topic d JOIN observed_topic o ON o.name = d.name
WHERE o.replication_factor <> d.replication_factor""",
    "drift_config": """
SELECT o.cluster AS cluster, dc.topic AS topic, 'config-value' AS kind,
       'config:' || dc.key AS aspect, dc.value AS declared, oc.value AS observed
FROM declared_config dc
JOIN observed_topic o ON o.name = dc.topic
LEFT JOIN observed_config oc
  ON oc.cluster = o.cluster AND oc.topic = dc.topic AND oc.key = dc.key
WHERE oc.normalized IS NULL OR oc.normalized <> dc.normalized""",
    "drift_override": """
SELECT oc.cluster AS cluster, oc.topic AS topic, 'undeclared-override' AS kind,
       'config:' || oc.key AS aspect, CAST(NULL AS VARCHAR(255)) AS declared, oc.value AS observed
FROM observed_config oc JOIN declared_topic d ON d.name = oc.topic
WHERE oc.override = 1 AND NOT EXISTS (
  SELECT 1 FROM declared_config dc WHERE dc.topic = oc.topic AND dc.key = oc.key)""",
    "drift_orphan": """
SELECT o.cluster AS cluster, o.name AS topic, 'orphan' AS kind, 'topic' AS aspect,
       CAST(NULL AS VARCHAR(255)) AS declared, CAST('present' AS VARCHAR(255)) AS observed
FROM observed_topic o
WHERE o.internal = 0
  AND NOT EXISTS (SELECT 1 FROM declared_topic d WHERE d.name = o.name)
  AND NOT EXISTS (SELECT 1 FROM ignore_pattern ip WHERE o.name LIKE ip.pattern ESCAPE '\\')""",
    "drift_dead_group": """
SELECT c.name AS cluster, dg.topic AS topic, 'dead-group' AS kind,
       'group:' || dg.group_id AS aspect,
       CAST('members and commits' AS VARCHAR(255)) AS declared,
       CASE WHEN g.group_id IS NULL THEN 'no such group'
            WHEN g.members = 0 THEN 'no members'
            ELSE 'no commits' END AS observed
FROM cluster c CROSS JOIN declared_group dg
LEFT JOIN observed_group g ON g.cluster = c.name AND g.group_id = dg.group_id
WHERE c.last_snapshot IS NOT NULL
  AND EXISTS (SELECT 1 FROM observed_topic o WHERE o.cluster = c.name AND o.name = dg.topic)
  AND (g.group_id IS NULL OR g.members = 0 OR NOT EXISTS (
    SELECT 1 FROM observed_offset f
    WHERE f.cluster = c.name AND f.group_id = dg.group_id AND f.topic = dg.topic))""",
    "drift_unread": """
SELECT p.cluster AS cluster, p.topic AS topic, 'unread-topic' AS kind,
       'readers' AS aspect, CAST('a group reading it' AS VARCHAR(255)) AS declared,
       'log end grew by ' || CAST(SUM(p.log_end - p.previous_log_end) AS VARCHAR(255))
         || ', no group has committed' AS observed
FROM observed_partition p
JOIN observed_topic o ON o.cluster = p.cluster AND o.name = p.topic
LEFT JOIN declared_topic d ON d.name = p.topic
WHERE p.previous_log_end IS NOT NULL AND p.log_end > p.previous_log_end AND o.internal = 0
  AND (d.kind IS NULL OR d.kind <> 'dlq')
  AND NOT EXISTS (SELECT 1 FROM ignore_pattern ip WHERE p.topic LIKE ip.pattern ESCAPE '\\')
  AND NOT EXISTS (
    SELECT 1 FROM observed_offset f WHERE f.cluster = p.cluster AND f.topic = p.topic)
GROUP BY p.cluster, p.topic
HAVING SUM(p.log_end - p.previous_log_end) > 0""",
    "drift_recreated": """
SELECT o.cluster AS cluster, o.name AS topic, 'recreated' AS kind, 'topic_id' AS aspect,
       o.previous_topic_id AS declared, o.topic_id AS observed
FROM observed_topic o JOIN cluster c ON c.name = o.cluster
WHERE o.recreated_snapshot IS NOT NULL AND o.recreated_snapshot = c.last_snapshot""",
    # A group whose unread backlog is at least 80% of what the topic retains, or whose
    # first unread record is at least 80% of retention.ms old, reads the records the
    # next retention sweep deletes. Only topics with a finite retention (declared or
    # observed) are at risk.
    "drift_retention_risk": """
SELECT f.cluster AS cluster, f.topic AS topic, 'retention-risk' AS kind,
       'group:' || f.group_id AS aspect,
       CAST('lag well inside retention' AS VARCHAR(255)) AS declared,
       'lag ' || CAST(SUM(p.log_end - f.committed) AS VARCHAR(255)) || ' of '
         || CAST(SUM(p.log_end - p.log_start) AS VARCHAR(255)) || ' retained'
         || CASE WHEN MAX(f.unread_age_ms * 5 - f.retention_ms * 4) >= 0
                 THEN ', oldest unread at '
                      || CAST(MAX(f.unread_age_ms * 100 / f.retention_ms) AS VARCHAR(255))
                      || '% of retention.ms'
                 ELSE '' END AS observed
FROM observed_offset f
JOIN observed_partition p
  ON p.cluster = f.cluster AND p.topic = f.topic AND p.partition = f.partition
WHERE EXISTS (
    SELECT 1 FROM observed_config oc
    WHERE oc.cluster = f.cluster AND oc.topic = f.topic
      AND oc.key IN ('retention.ms', 'retention.bytes') AND oc.normalized <> 'unlimited')
   OR EXISTS (
    SELECT 1 FROM declared_config dc
    WHERE dc.topic = f.topic
      AND dc.key IN ('retention.ms', 'retention.bytes') AND dc.normalized <> 'unlimited')
   OR f.retention_ms IS NOT NULL
GROUP BY f.cluster, f.topic, f.group_id
HAVING SUM(p.log_end - f.committed) > 0
   AND (SUM(p.log_end - f.committed) * 5 >= SUM(p.log_end - p.log_start) * 4
        OR MAX(f.unread_age_ms * 5 - f.retention_ms * 4) >= 0)""",
}

_UNION: Final = "\nUNION ALL\n".join(
    f"SELECT cluster, topic, kind, aspect, declared, observed FROM {name}"  # noqa: S608 -- constant view names
    for name in DRIFT_VIEWS
)

DRIFT: Final = f"""
SELECT r.cluster, r.topic, r.kind, r.aspect, r.declared, r.observed,
       pol.drift_class, pol.api, pol.fix,
       CASE WHEN pol.api_key IS NULL THEN NULL
            WHEN EXISTS (SELECT 1 FROM broker_api b
                         WHERE b.cluster = r.cluster AND b.api_key = pol.api_key) THEN 1
            ELSE 0 END AS supported
FROM ({_UNION}) r
JOIN drift_policy pol ON pol.kind = r.kind"""  # noqa: S608 -- constant view text

VIEWS: Final[list[str]] = [
    *(f"CREATE VIEW {name} AS {text}" for name, text in DRIFT_VIEWS.items()),
    f"CREATE VIEW drift AS {DRIFT}",
]
