//! Table schemas as MCP resources: each warehouse's table list, and any table's description
//! through a URI template. Reads go through the exploration tools, so they get the same
//! validation, policies and read-only sessions as a tool call.

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::tools::context::Invocation;
use crate::tools::resources::{
    ResourceContent, ResourceInfo, ResourceProvider, ResourceTemplateInfo,
};
use crate::tools::result::ResultText;
use crate::tools::{Registry, ToolError};

const PREFIX: &str = "datamcp://warehouse/";

/// The table-schema resources of every warehouse.
pub struct TableSchemas {
    warehouses: Vec<String>,
}

impl TableSchemas {
    /// Resources for these warehouses.
    pub fn new(warehouses: Vec<String>) -> Self {
        TableSchemas { warehouses }
    }
}

impl ResourceProvider for TableSchemas {
    fn resources(&self) -> Vec<ResourceInfo> {
        self.warehouses
            .iter()
            .map(|w| ResourceInfo {
                uri: format!("{PREFIX}{w}/tables"),
                name: format!("{w}-tables"),
                description: format!("Tables and views of warehouse '{w}'"),
                mime_type: "application/json".to_owned(),
            })
            .collect()
    }

    fn templates(&self) -> Vec<ResourceTemplateInfo> {
        vec![ResourceTemplateInfo {
            uri_template: format!("{PREFIX}{{warehouse}}/table/{{table}}"),
            name: "table-schema".to_owned(),
            description: "Columns, keys and indexes of a table (`table` may be schema.table)"
                .to_owned(),
            mime_type: "application/json".to_owned(),
        }]
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        registry: &'a Registry,
        invocation: &'a Invocation,
    ) -> Option<BoxFuture<'a, Result<ResourceContent, ToolError>>> {
        let rest = uri.strip_prefix(PREFIX)?;
        let (warehouse, what) = rest.split_once('/')?;
        let mut args = Map::new();
        args.insert("warehouse".into(), Value::from(warehouse));
        let tool = if what == "tables" {
            "sql_list_tables"
        } else {
            let table = what.strip_prefix("table/")?;
            match table.split_once('.') {
                Some((schema, table)) => {
                    args.insert("schema".into(), Value::from(schema));
                    args.insert("table".into(), Value::from(table));
                }
                None => {
                    args.insert("table".into(), Value::from(table));
                }
            }
            "sql_describe_table"
        };
        Some(Box::pin(async move {
            let result = registry
                .call_internal(tool, Some(args), invocation.clone())
                .await
                .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
            let (structured, text) = result.into_content(ResultText::Full);
            match structured {
                Some(value) => Ok(ResourceContent::Text {
                    text: serde_json::to_string_pretty(&value).unwrap_or_default(),
                    mime_type: "application/json".to_owned(),
                }),
                None => Err(ToolError::InvalidArguments(text)),
            }
        }))
    }
}
