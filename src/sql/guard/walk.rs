//! The walk over the whole syntax tree: nested statements, SELECT … INTO, locking reads, and every
//! function called, wherever it sits (select list, WHERE, FROM, ORDER BY, CTEs, subqueries).

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor,
    Visitor,
};

use super::lists::{Standing, standing};
use super::{Dialect, FunctionName, GuardError, Settings, statement_kind};

/// Walks a statement whose top level was already checked.
pub(super) struct ReadOnlyWalker<'a> {
    pub dialect: Dialect,
    pub settings: &'a Settings,
    pub depth: usize,
    /// Functions only the database's catalog can vouch for.
    pub for_the_catalog: Vec<FunctionName>,
}

impl Visitor for ReadOnlyWalker<'_> {
    type Break = GuardError;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<GuardError> {
        self.depth += 1;
        // The top level was checked already; below it only queries may appear.
        if self.depth > 1 && !matches!(statement, Statement::Query(_)) {
            return ControlFlow::Break(GuardError::NestedWrite(statement_kind(statement)));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _statement: &Statement) -> ControlFlow<GuardError> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<GuardError> {
        if !query.locks.is_empty() {
            return ControlFlow::Break(GuardError::LockingRead);
        }
        if let Some(error) = nested_write(&query.body) {
            return ControlFlow::Break(error);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<GuardError> {
        if select.into.is_some() {
            return ControlFlow::Break(GuardError::SelectInto);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<GuardError> {
        match expr {
            Expr::Function(function) => self.check_function(&function.name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<GuardError> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.check_function(name),
            _ => ControlFlow::Continue(()),
        }
    }
}

impl ReadOnlyWalker<'_> {
    fn check_function(&mut self, name: &ObjectName) -> ControlFlow<GuardError> {
        let Some(function) = FunctionName::from_parts(name, self.dialect) else {
            return ControlFlow::Break(GuardError::UnknownFunction(name.to_string()));
        };
        match standing(self.dialect, function.schema.as_deref(), &function.name) {
            Standing::Allowed => ControlFlow::Continue(()),
            Standing::Never => ControlFlow::Break(GuardError::DeniedFunction(function.to_string())),
            Standing::Unknown => {
                ControlFlow::Break(GuardError::UnknownFunction(function.to_string()))
            }
            Standing::AskTheCatalog => {
                if !self.settings.allows(&function) && !self.for_the_catalog.contains(&function) {
                    self.for_the_catalog.push(function);
                }
                ControlFlow::Continue(())
            }
        }
    }
}

impl FunctionName {
    /// The name as the database resolves it: PostgreSQL folds unquoted names to lowercase and
    /// keeps quoted ones as written; MySQL and SQLite compare function names without case.
    fn from_parts(name: &ObjectName, dialect: Dialect) -> Option<Self> {
        let idents: Vec<&Ident> = name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => ident,
                ObjectNamePart::Function(function) => &function.name,
            })
            .collect();
        let (last, qualifiers) = idents.split_last()?;
        let fold = |ident: &Ident, function: bool| match dialect {
            Dialect::Postgres if ident.quote_style.is_some() => ident.value.clone(),
            Dialect::Postgres => ident.value.to_ascii_lowercase(),
            Dialect::Mysql if !function => ident.value.clone(),
            _ => ident.value.to_lowercase(),
        };
        Some(FunctionName {
            schema: qualifiers.last().map(|ident| fold(ident, false)),
            name: fold(last, true),
        })
    }
}

fn nested_write(body: &SetExpr) -> Option<GuardError> {
    match body {
        SetExpr::Insert(_) => Some(GuardError::NestedWrite("INSERT".into())),
        SetExpr::Update(_) => Some(GuardError::NestedWrite("UPDATE".into())),
        SetExpr::Delete(_) => Some(GuardError::NestedWrite("DELETE".into())),
        SetExpr::Merge(_) => Some(GuardError::NestedWrite("MERGE".into())),
        SetExpr::SetOperation { left, right, .. } => {
            nested_write(left).or_else(|| nested_write(right))
        }
        _ => None,
    }
}
