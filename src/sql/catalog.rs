//! Catalog queries per dialect: what the exploration tools ask each database about itself.
//!
//! These are datamcp's own statements, with every client value bound as a parameter; they still
//! pass the guard like any other SQL, so no statement reaches a connection unchecked.

use super::guard::Dialect;

/// Tables and views: schema, name, kind, row estimate, comment. Parameters: schema pattern, name
/// pattern (LIKE), limit.
pub fn list_tables(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT 'main' AS table_schema, m.name AS table_name, m.type AS kind,
                    (SELECT CAST(substr(s.stat, 1, instr(s.stat || ' ', ' ') - 1) AS INTEGER)
                       FROM sqlite_stat1 s WHERE s.tbl = m.name LIMIT 1) AS row_estimate,
                    NULL AS comment
               FROM sqlite_schema m
              WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                AND 'main' LIKE ?1 AND m.name LIKE ?2
              ORDER BY m.name LIMIT ?3"
        }
        Dialect::Postgres => {
            "SELECT n.nspname AS table_schema, c.relname AS table_name,
                    CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                         WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END AS kind,
                    CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS row_estimate,
                    obj_description(c.oid, 'pg_class') AS comment
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%'
                AND n.nspname LIKE $1 AND c.relname LIKE $2
              ORDER BY 1, 2 LIMIT $3"
        }
        Dialect::Mysql => {
            "SELECT TABLE_SCHEMA AS table_schema, TABLE_NAME AS table_name,
                    CASE TABLE_TYPE WHEN 'BASE TABLE' THEN 'table' WHEN 'VIEW' THEN 'view'
                         ELSE lower(TABLE_TYPE) END AS kind,
                    TABLE_ROWS AS row_estimate, NULLIF(TABLE_COMMENT, '') AS comment
               FROM information_schema.TABLES
              WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
                AND TABLE_SCHEMA LIKE ? AND TABLE_NAME LIKE ?
              ORDER BY 1, 2 LIMIT ?"
        }
    }
}

/// Columns of one table: name, type, nullable, default, primary-key position, comment.
/// Parameters: schema (NULL for the default), table.
pub fn columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT c.name AS column_name, c.type AS data_type, c.\"notnull\" = 0 AND c.pk = 0 AS nullable,
                    c.dflt_value AS column_default, NULLIF(c.pk, 0) AS primary_key_position,
                    NULL AS comment
               FROM pragma_table_xinfo(?2) c
              WHERE ?1 IS NULL OR ?1 = 'main'
              ORDER BY c.cid"
        }
        Dialect::Postgres => {
            "SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS data_type,
                    NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS column_default,
                    (SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                      WHERE k.attnum = a.attnum) AS primary_key_position,
                    col_description(c.oid, a.attnum) AS comment
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
               LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
              WHERE c.relname = $2 AND n.nspname = coalesce($1, current_schema())
              ORDER BY a.attnum"
        }
        Dialect::Mysql => {
            "SELECT c.COLUMN_NAME AS column_name, c.COLUMN_TYPE AS data_type,
                    c.IS_NULLABLE = 'YES' AS nullable, c.COLUMN_DEFAULT AS column_default,
                    k.ORDINAL_POSITION AS primary_key_position, NULLIF(c.COLUMN_COMMENT, '') AS comment
               FROM information_schema.COLUMNS c
               LEFT JOIN information_schema.KEY_COLUMN_USAGE k
                 ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
                AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
              WHERE c.TABLE_SCHEMA = coalesce(?, DATABASE()) AND c.TABLE_NAME = ?
              ORDER BY c.ORDINAL_POSITION"
        }
    }
}

/// Foreign keys of one table: column, referenced table and column. Parameters: schema, table.
pub fn foreign_keys(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT f.\"from\" AS column_name, f.\"table\" AS references_table, f.\"to\" AS references_column
               FROM pragma_foreign_key_list(?2) f
              WHERE ?1 IS NULL OR ?1 = 'main'
              ORDER BY f.id, f.seq"
        }
        Dialect::Postgres => {
            "SELECT a.attname AS column_name, rn.nspname || '.' || rc.relname AS references_table,
                    ra.attname AS references_column
               FROM pg_constraint k
               JOIN pg_class c ON c.oid = k.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_class rc ON rc.oid = k.confrelid
               JOIN pg_namespace rn ON rn.oid = rc.relnamespace
               JOIN LATERAL unnest(k.conkey, k.confkey) AS u(col, ref) ON true
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.col
               JOIN pg_attribute ra ON ra.attrelid = rc.oid AND ra.attnum = u.ref
              WHERE k.contype = 'f' AND c.relname = $2 AND n.nspname = coalesce($1, current_schema())
              ORDER BY k.conname, a.attnum"
        }
        Dialect::Mysql => {
            "SELECT COLUMN_NAME AS column_name,
                    concat(REFERENCED_TABLE_SCHEMA, '.', REFERENCED_TABLE_NAME) AS references_table,
                    REFERENCED_COLUMN_NAME AS references_column
               FROM information_schema.KEY_COLUMN_USAGE
              WHERE TABLE_SCHEMA = coalesce(?, DATABASE()) AND TABLE_NAME = ?
                AND REFERENCED_TABLE_NAME IS NOT NULL
              ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION"
        }
    }
}

/// Indexes of one table: name, unique, columns (comma-separated). Parameters: schema, table.
pub fn indexes(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT l.name AS index_name, l.\"unique\" = 1 AS is_unique,
                    (SELECT group_concat(i.name, ', ') FROM pragma_index_info(l.name) i) AS columns
               FROM pragma_index_list(?2) l
              WHERE ?1 IS NULL OR ?1 = 'main'
              ORDER BY l.name"
        }
        Dialect::Postgres => {
            "SELECT ic.relname AS index_name, i.indisunique AS is_unique,
                    (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
                       FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS columns
               FROM pg_index i
               JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relname = $2 AND n.nspname = coalesce($1, current_schema())
              ORDER BY 1"
        }
        Dialect::Mysql => {
            "SELECT INDEX_NAME AS index_name, NON_UNIQUE = 0 AS is_unique,
                    group_concat(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ', ') AS columns
               FROM information_schema.STATISTICS
              WHERE TABLE_SCHEMA = coalesce(?, DATABASE()) AND TABLE_NAME = ?
              GROUP BY INDEX_NAME, NON_UNIQUE
              ORDER BY 1"
        }
    }
}

/// Columns matching a pattern across tables: schema, table, column, type, nullable, default.
/// Parameters: pattern (LIKE, matched against table and column names), limit.
pub fn search_columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT 'main' AS table_schema, m.name AS table_name, c.name AS column_name, c.type AS data_type,
                    c.\"notnull\" = 0 AND c.pk = 0 AS nullable, c.dflt_value AS column_default
               FROM sqlite_schema m, pragma_table_info(m.name) c
              WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                AND (c.name LIKE ?1 OR m.name LIKE ?1)
              ORDER BY m.name, c.cid LIMIT ?2"
        }
        Dialect::Postgres => {
            "SELECT table_schema, table_name, column_name, data_type, is_nullable = 'YES' AS nullable,
                    column_default
               FROM information_schema.columns
              WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
                AND (column_name LIKE $1 OR table_name LIKE $1)
              ORDER BY table_schema, table_name, ordinal_position LIMIT $2"
        }
        Dialect::Mysql => {
            "SELECT TABLE_SCHEMA AS table_schema, TABLE_NAME AS table_name,
                    COLUMN_NAME AS column_name, COLUMN_TYPE AS data_type,
                    IS_NULLABLE = 'YES' AS nullable, COLUMN_DEFAULT AS column_default
               FROM information_schema.COLUMNS
              WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
                AND (COLUMN_NAME LIKE ? OR TABLE_NAME LIKE ?)
              ORDER BY 1, 2, ORDINAL_POSITION LIMIT ?"
        }
    }
}

/// The statement that shows `sql`'s plan without running it.
pub fn explain(dialect: Dialect, sql: &str) -> String {
    let sql = sql.trim().trim_end_matches(';');
    match dialect {
        Dialect::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Dialect::Postgres => format!("EXPLAIN (FORMAT JSON) {sql}"),
        Dialect::Mysql => format!("EXPLAIN FORMAT=JSON {sql}"),
    }
}
