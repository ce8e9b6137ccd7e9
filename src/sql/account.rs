//! What a warehouse's own account may do. datamcp reads through read-only sessions whatever the
//! account, but an account that can write turns every gap in those sessions into a real risk,
//! and an administrative one (a superuser, FILE, …) holds powers no session setting takes away.
//! Both are inspected on first use: a writable account gets a warning by default and a refusal
//! of every query with `require_read_only_account = true`; a privileged account is refused
//! unless the warehouse sets `allow_privileged_account = true`.

use serde_json::Value;

/// The outcome of inspecting an account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountCheck {
    /// What the account can do beyond reading; empty for a read-only account.
    pub write_capabilities: Vec<String>,
    /// Administrative powers no read-only session takes away (reading server files, running
    /// programs, managing accounts, seeing other sessions); empty for an ordinary account.
    pub privileges: Vec<String>,
    /// The account's name, as the server reports it.
    pub user: String,
    /// The database the warehouse connects to.
    pub database: String,
}

impl AccountCheck {
    /// Whether the account can change anything.
    pub fn can_write(&self) -> bool {
        !self.write_capabilities.is_empty()
    }

    /// Whether the account holds administrative powers.
    pub fn is_privileged(&self) -> bool {
        !self.privileges.is_empty()
    }
}

/// PostgreSQL: role attributes and memberships, and any table the role may modify or schema it
/// may create in. The administrative set: superuser, REPLICATION (streams every row of every
/// database), CREATEROLE (before PostgreSQL 16 it can grant itself the roles below) and the
/// roles that read or write server files or run programs on the server.
pub const POSTGRES: &str = r"SELECT r.rolsuper, r.rolreplication, r.rolcreaterole,
        pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER'),
        pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER'),
        pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER'),
        r.rolcreatedb, r.rolbypassrls,
        EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                        OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))),
        EXISTS (SELECT 1 FROM pg_namespace n
                 WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
                   AND has_schema_privilege(n.oid, 'CREATE')),
        has_database_privilege(current_database(), 'CREATE'),
        current_user::text, current_database()::text
   FROM pg_roles r WHERE r.rolname = current_user";

/// Reads the row of [`POSTGRES`]. A missing or unreadable flag counts as held.
pub fn postgres(row: &[Value]) -> AccountCheck {
    let flag = |i: usize| row.get(i).and_then(Value::as_bool).unwrap_or(true);
    let text = |i: usize| {
        row.get(i)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut privileges = Vec::new();
    if flag(0) {
        // A superuser is a member of every role; naming them all would hide the point.
        privileges.push("is a superuser".to_owned());
    } else {
        let powers = [
            (1, "has REPLICATION"),
            (2, "has CREATEROLE"),
            (3, "is a member of pg_read_server_files"),
            (4, "is a member of pg_write_server_files"),
            (5, "is a member of pg_execute_server_program"),
        ];
        privileges.extend(
            powers
                .iter()
                .filter(|(i, _)| flag(*i))
                .map(|(_, label)| (*label).to_owned()),
        );
    }
    let writes = [
        (0, "is a superuser"),
        (2, "can create roles"),
        (6, "can create databases"),
        (7, "bypasses row-level security"),
        (8, "can insert, update, delete or truncate tables"),
        (9, "can create objects in a schema"),
        (10, "can create schemas in the database"),
    ];
    AccountCheck {
        write_capabilities: writes
            .iter()
            .filter(|(i, _)| flag(*i))
            .map(|(_, label)| (*label).to_owned())
            .collect(),
        privileges,
        user: text(11),
        database: text(12),
    }
}

/// MySQL/MariaDB: every privilege the current account holds, at any level, whether it may grant
/// it, and who and where the account is.
pub const MYSQL: &str = r"SELECT DISTINCT PRIVILEGE_TYPE, IS_GRANTABLE, CURRENT_USER(), DATABASE() FROM (
        SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES
        UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES
        UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES) p
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

/// Administrative privileges: files on the server (FILE), other sessions' SQL text (PROCESS),
/// the server itself (SUPER, SHUTDOWN, RELOAD), accounts (CREATE USER, GRANT OPTION, SET USER),
/// and the binary log, which holds every change (REPLICATION SLAVE/REPLICA, BINLOG REPLAY).
/// MariaDB's and MySQL 8's finer-grained `… ADMIN` privileges (BINLOG ADMIN, CONNECTION ADMIN,
/// SYSTEM_VARIABLES_ADMIN, …) count too.
const MYSQL_ADMIN: &[&str] = &[
    "FILE",
    "SUPER",
    "SHUTDOWN",
    "PROCESS",
    "RELOAD",
    "CREATE USER",
    "GRANT OPTION",
    "SET USER",
    "REPLICATION SLAVE",
    "REPLICATION REPLICA",
    "BINLOG REPLAY",
    "SYSTEM_USER",
];

fn mysql_is_admin(privilege: &str) -> bool {
    MYSQL_ADMIN.contains(&privilege)
        || privilege.ends_with(" ADMIN")
        || privilege.ends_with("_ADMIN")
}

/// Reads the rows of [`MYSQL`].
pub fn mysql(rows: &[Vec<Value>]) -> AccountCheck {
    let mut held: Vec<&str> = rows
        .iter()
        .filter_map(|row| row.first().and_then(Value::as_str))
        .collect();
    // information_schema shows GRANT OPTION as a flag on each privilege, not as one of its own.
    if rows
        .iter()
        .any(|row| row.get(1).and_then(Value::as_str) == Some("YES"))
    {
        held.push("GRANT OPTION");
    }
    held.sort_unstable();
    held.dedup();
    let text = |i: usize| {
        rows.first()
            .and_then(|row| row.get(i))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    AccountCheck {
        write_capabilities: held
            .iter()
            .filter(|p| !MYSQL_READ_ONLY.contains(p) && **p != "GRANT OPTION")
            .map(|p| format!("holds {p}"))
            .collect(),
        privileges: held
            .iter()
            .filter(|p| mysql_is_admin(p))
            .map(|p| format!("holds {p}"))
            .collect(),
        user: text(2),
        database: text(3),
    }
}

/// The refusal of a privileged account: what it holds, and the SQL that creates a read-only
/// account instead.
pub fn privileged_refusal(check: &AccountCheck, postgres: bool) -> String {
    let database = if check.database.is_empty() {
        "your_database"
    } else {
        &check.database
    };
    let create = if postgres {
        format!(
            "CREATE ROLE datamcp_reader LOGIN PASSWORD '…'; GRANT CONNECT ON DATABASE \"{database}\" TO datamcp_reader; GRANT USAGE ON SCHEMA public TO datamcp_reader; GRANT SELECT ON ALL TABLES IN SCHEMA public TO datamcp_reader; (the last two once per schema to expose)"
        )
    } else {
        format!(
            "CREATE USER 'datamcp_reader'@'%' IDENTIFIED BY '…'; GRANT SELECT ON `{database}`.* TO 'datamcp_reader'@'%';"
        )
    };
    let user = if check.user.is_empty() {
        "in the URL"
    } else {
        &check.user
    };
    format!(
        "the account {user} is privileged ({}): those powers reach past any read-only session, so datamcp does not use it. Connect with a read-only account, e.g. {create} Or, accepting the risk, set allow_privileged_account = true for this warehouse",
        check.privileges.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn postgres_attributes_name_what_the_account_can_do() {
        let mut row: Vec<Value> = [false; 11].map(|b| json!(b)).to_vec();
        row[8] = json!(true);
        row.extend([json!("reader"), json!("shop")]);
        let check = postgres(&row);
        assert_eq!(
            check.write_capabilities,
            ["can insert, update, delete or truncate tables"]
        );
        assert!(!check.is_privileged());
        assert_eq!(
            (check.user.as_str(), check.database.as_str()),
            ("reader", "shop")
        );
        assert!(!postgres(&[false; 11].map(|b| json!(b))).can_write());
        row[5] = json!(true);
        assert_eq!(
            postgres(&row).privileges,
            ["is a member of pg_execute_server_program"]
        );
        row[0] = json!(true);
        assert_eq!(postgres(&row).privileges, ["is a superuser"]);
    }

    #[test]
    fn mysql_select_only_is_read_only() {
        let reader = mysql(&[vec![json!("SELECT")], vec![json!("USAGE")]]);
        assert!(!reader.can_write() && !reader.is_privileged());
        let writer = mysql(&[
            vec![json!("SELECT")],
            vec![json!("INSERT")],
            vec![json!("DROP")],
        ]);
        assert_eq!(writer.write_capabilities, ["holds DROP", "holds INSERT"]);
        assert!(!writer.is_privileged());
    }

    #[test]
    fn mysql_administrative_privileges_make_an_account_privileged() {
        let admin = mysql(&[
            vec![json!("SELECT"), json!("YES")],
            vec![json!("FILE"), json!("YES")],
            vec![json!("PROCESS"), json!("YES")],
            vec![json!("BINLOG ADMIN"), json!("YES")],
        ]);
        assert_eq!(
            admin.privileges,
            [
                "holds BINLOG ADMIN",
                "holds FILE",
                "holds GRANT OPTION",
                "holds PROCESS"
            ]
        );
        let message = privileged_refusal(&admin, false);
        assert!(message.contains("holds FILE"), "{message}");
        assert!(message.contains("GRANT SELECT ON"), "{message}");
        assert!(message.contains("allow_privileged_account"), "{message}");
    }
}
