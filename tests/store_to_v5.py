#!/usr/bin/env python3
"""Turns a kvrun store (schema 9) back into schema 5 for the migration tests: the plan table
without its tp and kv_forward columns (rebuilt: tp is in its UNIQUE key), measurement and
sweep_point without kv_forward and tp (measurement's tp: schema 8), measurement without
last_layer (schema 9), user_version 5. Usage: store_to_v5.py FILE"""
import re
import sqlite3
import sys

c = sqlite3.connect(sys.argv[1])
sql = c.execute("SELECT sql FROM sqlite_schema WHERE name = 'plan'").fetchone()[0]
cols = [r[1] for r in c.execute("PRAGMA table_info(plan)") if r[1] not in ("tp", "kv_forward")]
sql = re.sub(r",\s*kv_forward TEXT NOT NULL DEFAULT 'whole'", "", sql)
sql = re.sub(r",\s*tp INTEGER NOT NULL DEFAULT 1 CHECK \(tp >= 1 AND p % tp = 0\)", "", sql)
sql = sql.replace(", method, tp)", ", method)").replace("CREATE TABLE \"plan\"", "CREATE TABLE plan5")
sql = sql.replace("CREATE TABLE plan (", "CREATE TABLE plan5 (", 1)
assert "plan5" in sql and " tp " not in sql, sql
c.execute("DROP VIEW plan_table")
c.execute(sql)
c.execute("INSERT INTO plan5 (%s) SELECT %s FROM plan" % (", ".join(cols), ", ".join(cols)))
c.execute("DROP TABLE plan")
c.execute("ALTER TABLE plan5 RENAME TO plan")
c.execute("CREATE INDEX plan_names ON plan (model, machine, p, scheme, method)")
c.execute("CREATE VIEW plan_table AS SELECT * FROM plan")
for t, col in (("measurement", "last_layer"), ("measurement", "kv_forward"), ("measurement", "tp"),
               ("sweep_point", "kv_forward"),
               ("sweep_point", "tp")):
    c.execute("ALTER TABLE %s DROP COLUMN %s" % (t, col))
c.execute("PRAGMA user_version = 5")
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
