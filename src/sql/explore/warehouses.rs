//! `sql_list_warehouses`: the configured warehouses, their dialects and descriptions.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::sql::warehouse::Warehouses;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `sql_list_warehouses` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListWarehousesParams {}

/// One configured warehouse.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WarehouseInfo {
    /// Name to pass as `warehouse`.
    pub name: String,
    /// SQL dialect: sqlite, postgres or mysql.
    pub dialect: String,
    /// What the data is about, from the config.
    pub description: Option<String>,
    /// Whether tools use it when no `warehouse` is given.
    pub default: bool,
    /// Whether its database account can write (known after the first query; datamcp only reads
    /// either way, but a read-only account is the safer setup).
    pub account_can_write: Option<bool>,
}

/// Result of `sql_list_warehouses`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListWarehousesOutput {
    /// Every configured warehouse, the default first.
    pub warehouses: Vec<WarehouseInfo>,
}

/// `sql_list_warehouses`.
pub struct ListWarehouses {
    warehouses: Arc<Warehouses>,
}

impl ListWarehouses {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>) -> Self {
        ListWarehouses { warehouses }
    }
}

impl Tool for ListWarehouses {
    type Params = ListWarehousesParams;
    type Output = ListWarehousesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_list_warehouses".to_owned(),
            title: "List SQL warehouses".to_owned(),
            description: "List the SQL warehouses with dialect and description. Start here when you do not know where the data is.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        _ctx: &CallContext,
        _params: &ListWarehousesParams,
    ) -> Result<ListWarehousesOutput, ToolError> {
        Ok(ListWarehousesOutput {
            warehouses: self
                .warehouses
                .all()
                .enumerate()
                .map(|(index, w)| WarehouseInfo {
                    name: w.name().to_owned(),
                    dialect: w.dialect().name().to_owned(),
                    description: w.description().map(str::to_owned),
                    default: index == 0,
                    account_can_write: w.account_can_write(),
                })
                .collect(),
        })
    }

    fn render_text(&self, _params: &ListWarehousesParams, output: &ListWarehousesOutput) -> String {
        output
            .warehouses
            .iter()
            .map(|w| {
                format!(
                    "{} ({}){}{}",
                    w.name,
                    w.dialect,
                    if w.default { ", default" } else { "" },
                    w.description
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
