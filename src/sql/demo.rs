//! The embedded demo warehouse: a small but realistic shop, generated deterministically into the
//! per-user data folder on first use, so `datamcp serve` works with no config at all.
//!
//! This is the only place datamcp writes SQL, and only to a file it creates itself; queries from
//! clients never reach this connection.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// File name, versioned so a changed generator never meets an old file.
pub const FILE_NAME: &str = "demo-v2.sqlite";

const CUSTOMERS: i64 = 2_500;
const PRODUCTS: i64 = 150;
const ORDERS: i64 = 25_000;
const EVENTS: i64 = 40_000;
/// 2023-01-01T00:00:00Z, the start of the two years the data covers.
const EPOCH_START: i64 = 1_672_531_200;
const SPAN_SECONDS: i64 = 2 * 365 * 86_400;

const SCHEMA: &str = "
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL,
    city TEXT NOT NULL,
    segment TEXT NOT NULL CHECK (segment IN ('consumer', 'small_business', 'enterprise')),
    signup_date DATE NOT NULL,
    phone TEXT,
    marketing_opt_in BOOLEAN NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price DECIMAL(10,2) NOT NULL,
    cost DECIMAL(10,2) NOT NULL,
    attributes JSON NOT NULL,
    discontinued_at DATE
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    ordered_at DATETIME NOT NULL,
    status TEXT NOT NULL,
    shipped_at DATETIME,
    delivered_at DATETIME,
    currency TEXT NOT NULL,
    discount DECIMAL(10,2),
    total DECIMAL(12,2) NOT NULL
);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders(id),
    line_no INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(10,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customers(id),
    occurred_at DATETIME NOT NULL,
    event_type TEXT NOT NULL,
    payload JSON NOT NULL
);
CREATE TABLE model_scores (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    scored_on DATE NOT NULL,
    model_version INTEGER NOT NULL,
    churn_score REAL NOT NULL,
    predicted_churn INTEGER NOT NULL,
    churned INTEGER NOT NULL,
    predicted_spend REAL NOT NULL,
    actual_spend REAL NOT NULL
);
CREATE TABLE feature_snapshots (
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    week DATE NOT NULL,
    tenure_months INTEGER NOT NULL,
    monthly_spend REAL NOT NULL,
    support_tickets INTEGER NOT NULL,
    plan TEXT NOT NULL,
    days_since_login INTEGER,
    PRIMARY KEY (customer_id, week)
);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX orders_ordered_at ON orders(ordered_at);
CREATE INDEX order_items_product ON order_items(product_id);
CREATE INDEX events_customer ON events(customer_id);
CREATE INDEX events_occurred_at ON events(occurred_at);
";

/// Returns the demo database's path, generating it first if it does not exist yet. Blocking.
///
/// Generation writes a private temporary file and renames it into place, so concurrent first
/// starts never see a half-written database.
pub fn ensure(data_dir: &Path) -> Result<PathBuf, DemoError> {
    let path = data_dir.join(FILE_NAME);
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(data_dir)?;
    let temporary = data_dir.join(format!(
        ".{FILE_NAME}.{}.{}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    tracing::info!(path = %path.display(), "generating the demo database (first start)");
    if let Err(error) = generate(&temporary) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

/// Why the demo database could not be created.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The data folder is not writable.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// SQLite failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

fn generate(path: &Path) -> Result<(), DemoError> {
    let mut connection = Connection::open(path)?;
    // A private temporary file: durability would only slow the first start down.
    connection.pragma_update(None, "journal_mode", "OFF")?;
    connection.pragma_update(None, "synchronous", "OFF")?;
    connection.execute_batch(SCHEMA)?;
    let transaction = connection.transaction()?;
    for (table, rows) in dataset() {
        let Some(width) = rows.first().map(Vec::len) else {
            continue;
        };
        let placeholders = vec!["?"; width].join(", ");
        let mut insert =
            transaction.prepare(&format!("INSERT INTO {table} VALUES ({placeholders})"))?;
        for row in &rows {
            insert.execute(rusqlite::params_from_iter(row.iter()))?;
        }
    }
    transaction.commit()?;
    connection.execute_batch("ANALYZE")?;
    Ok(())
}

impl rusqlite::ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as Sql};
        Ok(ToSqlOutput::Owned(match self {
            Cell::Null => Sql::Null,
            Cell::Int(i) => Sql::Integer(*i),
            Cell::Real(f) => Sql::Real(*f),
            Cell::Bool(b) => Sql::Integer(i64::from(*b)),
            Cell::Text(t) => Sql::Text(t.clone()),
        }))
    }
}

/// One generated value.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
}

impl From<i64> for Cell {
    fn from(value: i64) -> Self {
        Cell::Int(value)
    }
}

impl From<&str> for Cell {
    fn from(value: &str) -> Self {
        Cell::Text(value.to_owned())
    }
}

impl From<String> for Cell {
    fn from(value: String) -> Self {
        Cell::Text(value)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Cell::Null, Into::into)
    }
}

/// Every table's rows, generated from a fixed seed: the same data on every machine.
fn dataset() -> Vec<(&'static str, Vec<Vec<Cell>>)> {
    let mut rng = fastrand::Rng::with_seed(20_240_101);
    let mut tables: Vec<(&str, Vec<Vec<Cell>>)> = Vec::new();
    let mut customers = Vec::new();

    let countries: [(&str, &[&str]); 6] = [
        ("US", &["New York", "Austin", "Seattle", "Chicago"]),
        ("DE", &["Berlin", "Munich", "Hamburg"]),
        ("FR", &["Paris", "Lyon"]),
        ("GB", &["London", "Manchester", "Leeds"]),
        ("JP", &["Tokyo", "Osaka"]),
        ("BR", &["São Paulo", "Rio de Janeiro"]),
    ];
    let first = [
        "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Frances", "Edsger",
        "Radia", "Yukihiro", "Sophie", "José", "Zoë",
    ];
    let last = [
        "Lovelace",
        "Hopper",
        "Torvalds",
        "Hamilton",
        "Turing",
        "Liskov",
        "Thompson",
        "Allen",
        "Dijkstra",
        "Perlman",
        "Matsumoto",
        "Wilson",
        "O'Neil",
        "Müller",
    ];
    let segments = [
        "consumer",
        "consumer",
        "consumer",
        "small_business",
        "enterprise",
    ];
    for id in 1..=CUSTOMERS {
        let (country, cities) = countries[rng.usize(..countries.len())];
        let name = format!(
            "{} {}",
            first[rng.usize(..first.len())],
            last[rng.usize(..last.len())]
        );
        let email = format!(
            "{}.{id}@example.com",
            name.to_lowercase().replace([' ', '\''], ".")
        );
        let phone = (rng.f64() > 0.3).then(|| {
            format!(
                "+{} {:03} {:04}",
                rng.u32(1..99),
                rng.u32(100..999),
                rng.u32(0..9999)
            )
        });
        customers.push(vec![
            Cell::from(id),
            Cell::from(name),
            Cell::from(email),
            Cell::from(country),
            Cell::from(cities[rng.usize(..cities.len())]),
            Cell::from(segments[rng.usize(..segments.len())]),
            Cell::from(date(EPOCH_START - rng.i64(0..3 * 365 * 86_400))),
            Cell::from(phone),
            Cell::Bool(rng.bool()),
        ]);
    }
    tables.push(("customers", customers));

    let categories = [
        ("books", 8, 60),
        ("electronics", 30, 900),
        ("garden", 5, 200),
        ("kitchen", 6, 250),
        ("toys", 4, 120),
        ("apparel", 10, 180),
    ];
    let mut prices = Vec::with_capacity(PRODUCTS as usize);
    let mut products = Vec::new();
    for id in 1..=PRODUCTS {
        let (category, low, high) = categories[rng.usize(..categories.len())];
        let price_cents = rng.i64(low * 100..high * 100) / 5 * 5 + 99;
        prices.push(price_cents);
        let attributes = serde_json::json!({
            "color": (["red", "blue", "black", "green", "white"][rng.usize(..5)]),
            "weight_g": rng.u32(50..5000),
            "tags": [category, if rng.bool() { "bestseller" } else { "new" }],
        });
        products.push(vec![
            Cell::from(id),
            Cell::from(format!("{}-{id:04}", &category[..3].to_uppercase())),
            Cell::from(format!(
                "{} {}",
                ["Classic", "Pro", "Mini", "Eco", "Deluxe"][rng.usize(..5)],
                category.trim_end_matches('s')
            )),
            Cell::from(category),
            Cell::Real(cents(price_cents)),
            Cell::Real(cents(price_cents * rng.i64(40..80) / 100)),
            Cell::from(attributes.to_string()),
            Cell::from((rng.f64() < 0.1).then(|| date(EPOCH_START + rng.i64(0..SPAN_SECONDS)))),
        ]);
    }
    tables.push(("products", products));

    let (mut orders, mut order_items) = (Vec::new(), Vec::new());
    let statuses = [
        "delivered",
        "delivered",
        "delivered",
        "shipped",
        "paid",
        "placed",
        "cancelled",
        "returned",
    ];
    for id in 1..=ORDERS {
        // Orders grow over time: later seconds are more likely.
        let ordered = EPOCH_START + ((rng.f64().sqrt()) * SPAN_SECONDS as f64) as i64;
        let status = statuses[rng.usize(..statuses.len())];
        let shipped = matches!(status, "shipped" | "delivered" | "returned")
            .then(|| ordered + rng.i64(3_600..4 * 86_400));
        let delivered = shipped
            .filter(|_| status != "shipped")
            .map(|s| s + rng.i64(86_400..7 * 86_400));
        let mut subtotal = 0;
        let items: Vec<(i64, i64, i64)> = (0..rng.i64(1..=4))
            .map(|_| {
                let product = rng.i64(1..=PRODUCTS);
                let quantity = if rng.f64() < 0.8 { 1 } else { rng.i64(2..=5) };
                let unit_price = prices[(product - 1) as usize];
                subtotal += unit_price * quantity;
                (product, quantity, unit_price)
            })
            .collect();
        let discount = (rng.f64() < 0.25).then(|| subtotal * rng.i64(5..=20) / 100);
        orders.push(vec![
            Cell::from(id),
            Cell::from(rng.i64(1..=CUSTOMERS)),
            Cell::from(timestamp(ordered)),
            Cell::from(status),
            Cell::from(shipped.map(timestamp)),
            Cell::from(delivered.map(timestamp)),
            Cell::from(["USD", "USD", "EUR", "GBP"][rng.usize(..4)]),
            discount.map_or(Cell::Null, |d| Cell::Real(cents(d))),
            Cell::Real(cents(subtotal - discount.unwrap_or(0))),
        ]);
        for (line_no, (product, quantity, unit_price)) in (1..).zip(items) {
            order_items.push(vec![
                Cell::from(id),
                Cell::from(line_no),
                Cell::from(product),
                Cell::from(quantity),
                Cell::Real(cents(unit_price)),
            ]);
        }
    }
    tables.push(("orders", orders));
    tables.push(("order_items", order_items));

    let mut events = Vec::new();
    let event_types = [
        "page_view",
        "page_view",
        "page_view",
        "search",
        "add_to_cart",
        "checkout",
        "support_ticket",
    ];
    for id in 1..=EVENTS {
        let event_type = event_types[rng.usize(..event_types.len())];
        let payload = match event_type {
            "page_view" => {
                serde_json::json!({"path": format!("/products/{}", rng.i64(1..=PRODUCTS)), "referrer": ([Some("search"), Some("ad"), Some("email"), None][rng.usize(..4)]), "ms_on_page": rng.u32(200..120_000)})
            }
            "search" => {
                serde_json::json!({"query": (["lamp", "usb cable", "novel", "garden hose", "lego"][rng.usize(..5)]), "results": rng.u32(0..80)})
            }
            "add_to_cart" | "checkout" => {
                serde_json::json!({"product_id": rng.i64(1..=PRODUCTS), "quantity": rng.u32(1..4)})
            }
            _ => {
                serde_json::json!({"priority": (["low", "normal", "high"][rng.usize(..3)]), "channel": "chat"})
            }
        };
        events.push(vec![
            Cell::from(id),
            Cell::from((rng.f64() > 0.2).then(|| rng.i64(1..=CUSTOMERS))),
            Cell::from(timestamp(EPOCH_START + rng.i64(0..SPAN_SECONDS))),
            Cell::from(event_type),
            Cell::from(payload.to_string()),
        ]);
    }
    tables.push(("events", events));
    tables.extend(model_tables());
    tables
}

/// Mondays of the weeks the ML tables cover; the last one is the drifting week.
const WEEKS: [&str; 8] = [
    "2024-11-04",
    "2024-11-11",
    "2024-11-18",
    "2024-11-25",
    "2024-12-02",
    "2024-12-09",
    "2024-12-16",
    "2024-12-23",
];
/// Customers in each weekly snapshot.
const SNAPSHOT_CUSTOMERS: i64 = 1_500;

/// The ML demo: weekly feature snapshots of customers, whose last week drifts (spend up, more
/// basic plans, logins missing more often), and a churn model's scores with the real outcomes
/// and a spend forecast beside the real spend. A separate seed keeps the shop tables unchanged.
fn model_tables() -> Vec<(&'static str, Vec<Vec<Cell>>)> {
    let mut rng = fastrand::Rng::with_seed(20_241_223);
    let mut snapshots = Vec::new();
    let mut scores = Vec::new();
    let mut id = 0;
    for (week_index, week) in WEEKS.iter().enumerate() {
        let drifting = week_index == WEEKS.len() - 1;
        for customer in 1..=SNAPSHOT_CUSTOMERS {
            let tenure = rng.i64(1..=72);
            let base_spend = 20.0 + rng.f64() * 80.0 + (tenure as f64) * 0.4;
            let spend = if drifting {
                base_spend * 1.3 + 10.0
            } else {
                base_spend
            };
            let tickets = (rng.f64() * rng.f64() * 6.0) as i64;
            let plans: &[&str] = if drifting {
                &["basic", "basic", "basic", "standard", "premium"]
            } else {
                &["basic", "standard", "standard", "premium", "premium"]
            };
            let plan = plans[rng.usize(..plans.len())];
            let missing_rate = if drifting { 0.15 } else { 0.02 };
            let login = (rng.f64() >= missing_rate).then(|| rng.i64(0..60));
            snapshots.push(vec![
                Cell::from(customer),
                Cell::from(*week),
                Cell::from(tenure),
                Cell::Real((spend * 100.0).round() / 100.0),
                Cell::from(tickets),
                Cell::from(plan),
                Cell::from(login),
            ]);
            // The churn model: a logistic score of the same features, rounded as a served
            // model's output would be; the outcome drawn from a slightly different truth, so
            // the model is good but not perfect.
            let logit = -1.2 - 0.05 * tenure as f64
                + 0.55 * tickets as f64
                + login.map_or(0.8, |d| 0.03 * d as f64);
            let score = 1.0 / (1.0 + (-logit).exp());
            let truth = 1.0 / (1.0 + (-(logit * 0.9 + 0.4 * (rng.f64() - 0.5))).exp());
            let churned = rng.f64() < truth;
            let predicted_spend = base_spend * (0.9 + rng.f64() * 0.2);
            id += 1;
            scores.push(vec![
                Cell::from(id),
                Cell::from(customer),
                Cell::from(*week),
                Cell::from(if week_index < 4 { 6 } else { 7 }),
                Cell::Real((score * 10_000.0).round() / 10_000.0),
                Cell::from(i64::from(score >= 0.5)),
                Cell::from(i64::from(churned)),
                Cell::Real((predicted_spend * 100.0).round() / 100.0),
                Cell::Real((spend * 100.0).round() / 100.0),
            ]);
        }
    }
    vec![("feature_snapshots", snapshots), ("model_scores", scores)]
}

/// Money as a REAL with two decimals: SQLite has no exact decimal type.
fn cents(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// `YYYY-MM-DD` of a Unix time.
fn date(unix: i64) -> String {
    crate::calendar::iso_date(unix.div_euclid(86_400))
}

/// ISO 8601 UTC timestamp of a Unix time, e.g. `2024-03-05T10:22:13Z`.
fn timestamp(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(unix),
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        assert_eq!(timestamp(EPOCH_START), "2023-01-01T00:00:00Z");
        assert_eq!(timestamp(1_709_634_133), "2024-03-05T10:22:13Z");
        assert_eq!(date(951_782_400), "2000-02-29");
    }
}
