//! What the guard knows per dialect beyond syntax: functions with side effects or host access,
//! and which SQLite PRAGMAs only report. The SQLite authorizer consults the same lists, so the
//! guard and the engine-side layer agree.

use super::Dialect;

/// Whether SQLite function `name` is on the deny list; the engine-side authorizer asks this.
pub fn is_denied_sqlite_function(name: &str) -> bool {
    denied_functions(Dialect::Sqlite)
        .iter()
        .any(|denied| denied.eq_ignore_ascii_case(name))
}

/// Whether a SQLite PRAGMA only reports: a lookup PRAGMA with its argument, or a reporting
/// PRAGMA without a value. The engine-side authorizer asks this too.
pub fn is_reporting_sqlite_pragma(name: &str, has_value: bool) -> bool {
    let name = name.to_ascii_lowercase();
    if has_value {
        LOOKUP_PRAGMAS.contains(&name.as_str())
    } else {
        READ_ONLY_PRAGMAS.contains(&name.as_str()) || LOOKUP_PRAGMAS.contains(&name.as_str())
    }
}

/// SQLite PRAGMAs that report on the object their argument names: `PRAGMA table_info('t')`.
pub(super) const LOOKUP_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

/// SQLite PRAGMAs that only report when given no value; with a value, most of them write.
pub(super) const READ_ONLY_PRAGMAS: &[&str] = &[
    "table_list",
    "collation_list",
    "function_list",
    "module_list",
    "pragma_list",
    "database_list",
    "compile_options",
    "encoding",
    "page_count",
    "page_size",
    "freelist_count",
    "user_version",
    "application_id",
    "schema_version",
    "data_version",
    "query_only",
];

pub(super) fn denied_functions(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Sqlite => &[
            "load_extension",
            "readfile",
            "writefile",
            "edit",
            "fts3_tokenizer",
            "zipfile",
            "sqlar_compress",
            "sqlar_uncompress",
        ],
        Dialect::Postgres => &[
            // Sleeps and resource hogs.
            "pg_sleep",
            "pg_sleep_for",
            "pg_sleep_until",
            // Files on the database host.
            "pg_read_file",
            "pg_read_binary_file",
            "pg_ls_dir",
            "pg_stat_file",
            "pg_ls_logdir",
            "pg_ls_waldir",
            "pg_ls_tmpdir",
            "pg_ls_archive_statusdir",
            "pg_file_write",
            "pg_file_rename",
            "pg_file_unlink",
            "pg_logdir_ls",
            // Large objects.
            "lo_import",
            "lo_export",
            "lo_open",
            "lo_create",
            "lo_creat",
            "lo_unlink",
            "lo_put",
            "lo_get",
            "lo_from_bytea",
            "lo_truncate",
            "loread",
            "lowrite",
            // Other databases.
            "dblink",
            "dblink_exec",
            "dblink_connect",
            "dblink_connect_u",
            "dblink_send_query",
            "dblink_open",
            "dblink_fetch",
            // Sequences and transaction ids.
            "nextval",
            "setval",
            "txid_current",
            "pg_current_xact_id",
            // Session and server state.
            "set_config",
            "pg_advisory_lock",
            "pg_advisory_lock_shared",
            "pg_try_advisory_lock",
            "pg_try_advisory_lock_shared",
            "pg_advisory_xact_lock",
            "pg_advisory_xact_lock_shared",
            "pg_try_advisory_xact_lock",
            "pg_try_advisory_xact_lock_shared",
            "pg_advisory_unlock",
            "pg_advisory_unlock_shared",
            "pg_advisory_unlock_all",
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_switch_wal",
            "pg_create_restore_point",
            "pg_backup_start",
            "pg_backup_stop",
            "pg_start_backup",
            "pg_stop_backup",
            "pg_promote",
            "pg_wal_replay_pause",
            "pg_wal_replay_resume",
            "pg_create_physical_replication_slot",
            "pg_create_logical_replication_slot",
            "pg_drop_replication_slot",
            "pg_copy_physical_replication_slot",
            "pg_copy_logical_replication_slot",
            "pg_replication_slot_advance",
            "pg_logical_emit_message",
            "pg_notify",
            "pg_stat_reset",
            "pg_stat_reset_shared",
            "pg_stat_reset_single_table_counters",
            "pg_stat_reset_single_function_counters",
            "pg_stat_reset_slru",
            "pg_import_system_collations",
            // Functions that run a SQL string of their own.
            "query_to_xml",
            "query_to_xmlschema",
            "query_to_xml_and_xmlschema",
            "cursor_to_xml",
            "cursor_to_xmlschema",
            "ts_stat",
        ],
        Dialect::Mysql => &[
            "sleep",
            "benchmark",
            "load_file",
            "get_lock",
            "release_lock",
            "release_all_locks",
            "is_free_lock",
            "is_used_lock",
            "master_pos_wait",
            "source_pos_wait",
            "wait_for_executed_gtid_set",
            "wait_until_sql_thread_after_gtids",
            "sys_exec",
            "sys_eval",
            "nextval",
            "setval",
            "lastval",
        ],
    }
}
