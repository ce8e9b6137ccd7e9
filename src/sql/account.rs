//! What a warehouse's own account may do. datamcp reads through read-only sessions whatever the
//! account, but an account that can write turns every gap in those sessions into a real risk, so
//! it is inspected on first use: a warning by default, a refusal of every query when the config
//! says `require_read_only_account = true`.

use serde_json::Value;

/// The outcome of inspecting an account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountCheck {
    /// What the account can do beyond reading; empty for a read-only account.
    pub write_capabilities: Vec<String>,
}

impl AccountCheck {
    /// Whether the account can change anything.
    pub fn can_write(&self) -> bool {
        !self.write_capabilities.is_empty()
    }
}

/// PostgreSQL: role attributes, and any table the role may modify or schema it may create in.
pub const POSTGRES: &str = r"SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
        EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                        OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))),
        EXISTS (SELECT 1 FROM pg_namespace n
                 WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
                   AND has_schema_privilege(n.oid, 'CREATE')),
        has_database_privilege(current_database(), 'CREATE')
   FROM pg_roles r WHERE r.rolname = current_user";

/// Reads the row of [`POSTGRES`].
pub fn postgres(row: &[Value]) -> AccountCheck {
    let labels = [
        "is a superuser",
        "can create roles",
        "can create databases",
        "bypasses row-level security",
        "can insert, update, delete or truncate tables",
        "can create objects in a schema",
        "can create schemas in the database",
    ];
    AccountCheck {
        write_capabilities: labels
            .iter()
            .zip(row)
            .filter(|(_, value)| value.as_bool().unwrap_or(true))
            .map(|(label, _)| (*label).to_owned())
            .collect(),
    }
}

/// MySQL/MariaDB: every privilege the current account holds, at any level.
pub const MYSQL: &str = r"SELECT DISTINCT PRIVILEGE_TYPE FROM (
        SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES
        UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES
        UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES) p
  WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                         SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";

/// Privileges that only read or observe.
const MYSQL_READ_ONLY: &[&str] = &[
    "SELECT",
    "USAGE",
    "SHOW VIEW",
    "SHOW DATABASES",
    "PROCESS",
    "REPLICATION CLIENT",
    "BINLOG MONITOR",
    "SLAVE MONITOR",
];

/// Reads the rows of [`MYSQL`].
pub fn mysql(rows: &[Vec<Value>]) -> AccountCheck {
    let mut write_capabilities: Vec<String> = rows
        .iter()
        .filter_map(|row| row.first().and_then(Value::as_str))
        .filter(|privilege| !MYSQL_READ_ONLY.contains(privilege))
        .map(|privilege| format!("holds {privilege}"))
        .collect();
    write_capabilities.sort();
    AccountCheck { write_capabilities }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn postgres_attributes_name_what_the_account_can_do() {
        let row = [false, false, false, false, true, false, false].map(|b| json!(b));
        let check = postgres(&row);
        assert_eq!(
            check.write_capabilities,
            ["can insert, update, delete or truncate tables"]
        );
        assert!(!postgres(&[false; 7].map(|b| json!(b))).can_write());
    }

    #[test]
    fn mysql_select_only_is_read_only() {
        assert!(!mysql(&[vec![json!("SELECT")], vec![json!("USAGE")]]).can_write());
        let writer = mysql(&[
            vec![json!("SELECT")],
            vec![json!("INSERT")],
            vec![json!("DROP")],
        ]);
        assert_eq!(writer.write_capabilities, ["holds DROP", "holds INSERT"]);
    }
}
