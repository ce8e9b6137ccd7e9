#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn vars() -> Vars<'static> {
    Vars::new()
        .with("inputs", json!({"region": "emea", "n": 21, "big": 18446744073709551615u64, "ratio": 0.5, "tags": ["a", "b"]}))
        .with(
            "steps",
            json!({
                "orders": {"output": {"rows": [[1, "x", 10.5], [2, "y", 3.0], [3, "z", 7.25]], "row_count": 3}},
                "empty": {"output": {"rows": []}}
            }),
        )
        .with("item", json!({"id": 7, "name": "seven", "nothing": null}))
}

fn eval(text: &str) -> Value {
    Expr::compile(text).unwrap().eval(&vars()).unwrap()
}

fn eval_err(text: &str) -> String {
    Expr::compile(text)
        .unwrap()
        .eval(&vars())
        .unwrap_err()
        .to_string()
}

fn refs(text: &str) -> Vec<String> {
    Expr::compile(text)
        .unwrap()
        .references()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn whole_value_references_keep_their_json_type() {
    assert_eq!(eval("inputs.tags"), json!(["a", "b"]));
    assert_eq!(
        eval("item"),
        json!({"id": 7, "name": "seven", "nothing": null})
    );
    assert_eq!(eval("inputs.n"), json!(21));
    assert_eq!(eval("inputs.ratio"), json!(0.5));
    assert_eq!(eval("item.nothing"), json!(null));
    assert_eq!(eval("inputs.n > 20"), json!(true));
    assert_eq!(eval("steps.empty.output.rows"), json!([]));
}

#[test]
fn numbers_convert_both_ways() {
    // Beyond i64, a JSON integer is a CEL uint, and comes back unchanged.
    assert_eq!(eval("inputs.big"), json!(18446744073709551615u64));
    assert_eq!(eval("type(inputs.big) == uint"), json!(true));
    assert_eq!(eval("inputs.big - 1u"), json!(18446744073709551614u64));
    assert_eq!(eval("type(inputs.n) == int"), json!(true));
    assert_eq!(eval("inputs.ratio * 4.0"), json!(2.0));
    assert_eq!(eval("double(inputs.n) / 2.0"), json!(10.5));
    assert_eq!(eval("int(inputs.ratio * 10.0)"), json!(5));
    assert_eq!(eval("string(inputs.n) + '!'"), json!("21!"));
    // CEL does not mix int and double in arithmetic: the message says so.
    let error = eval_err("inputs.n * 0.5");
    assert!(
        error.contains("'mul' does not apply to int 21 and double 0.5"),
        "{error}"
    );
    assert!(error.contains("double()"), "{error}");
    // A double JSON cannot hold is an error, not a silent null.
    let error = eval_err("1.0 / 0.0");
    assert!(error.contains("JSON cannot represent"), "{error}");
}

#[test]
fn other_results_become_json() {
    assert_eq!(eval("b'hi'"), json!("aGk="));
    assert_eq!(eval("{1: 'a', true: 'b'}"), json!({"1": "a", "true": "b"}));
    let error = eval_err("{1: 'a', '1': 'b'}");
    assert!(error.contains("collide"), "{error}");
    // A type comes back as its name.
    assert_eq!(eval("type(1)"), json!("int"));
    let error = eval_err("optional.of(1)");
    assert!(error.contains("no JSON form"), "{error}");
}

#[test]
fn comparisons_and_boolean_logic() {
    let v = vars();
    let check = |text: &str| Expr::compile(text).unwrap().eval_bool(&v).unwrap();
    assert!(check("inputs.region == 'emea' && inputs.n >= 21"));
    assert!(check("inputs.region != 'emea' || !(inputs.n < 21)"));
    assert!(check("inputs.region in ['emea', 'apac']"));
    assert!(check("'b' in inputs.tags"));
    assert!(check(
        "inputs.region.startsWith('em') && inputs.region.endsWith('ea')"
    ));
    assert!(check("inputs.region.contains('me')"));
    assert!(check("size(inputs.tags) == 2 && size(inputs.region) == 4"));
    assert!(!check("inputs.n > 100 ? true : false"));
}

#[test]
fn eval_bool_names_the_type_that_came_back() {
    let error = Expr::compile("inputs.tags")
        .unwrap()
        .eval_bool(&vars())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"`inputs.tags` must evaluate to a bool, but gave a list (["a","b"])"#
    );
}

#[test]
fn lists_reshape_with_macros() {
    assert_eq!(
        eval("steps.orders.output.rows.map(r, r[1])"),
        json!(["x", "y", "z"])
    );
    assert_eq!(
        eval("steps.orders.output.rows.filter(r, r[2] > 5.0).map(r, r[0])"),
        json!([1, 3])
    );
    assert_eq!(
        eval("steps.orders.output.rows.map(r, r[0] > 1, r[1])"),
        json!(["y", "z"])
    );
    assert_eq!(eval("size(steps.orders.output.rows)"), json!(3));
    assert_eq!(
        eval("steps.orders.output.rows.exists(r, r[1] == 'y')"),
        json!(true)
    );
    assert_eq!(
        eval("steps.orders.output.rows.all(r, r[0] > 0)"),
        json!(true)
    );
    assert_eq!(
        eval("steps.orders.output.rows.exists_one(r, r[0] == 2)"),
        json!(true)
    );
    assert_eq!(
        eval("steps.orders.output.rows.map(r, {'id': r[0], 'name': r[1]})"),
        json!([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}, {"id": 3, "name": "z"}])
    );
}

#[test]
fn maps_are_built_from_expressions() {
    assert_eq!(
        eval("{'n': inputs.n * 2, 'region': inputs.region, 'first': inputs.tags[0]}"),
        json!({"n": 42, "region": "emea", "first": "a"})
    );
}

#[test]
fn has_tests_for_an_optional_key() {
    assert_eq!(eval("has(inputs.region)"), json!(true));
    assert_eq!(eval("has(inputs.x)"), json!(false));
    assert_eq!(
        eval("has(inputs.x) ? inputs.x : 'default'"),
        json!("default")
    );
}

#[test]
fn references_are_the_root_and_the_name_after_it() {
    assert_eq!(refs("steps.orders.output.rows"), ["steps.orders"]);
    assert_eq!(refs("inputs.region"), ["inputs.region"]);
    assert_eq!(refs("item"), ["item"]);
    assert_eq!(refs("steps['orders'].output"), ["steps.orders"]);
    assert_eq!(refs("inputs[\"region\"]"), ["inputs.region"]);
    // A computed index names no field.
    assert_eq!(refs("steps[inputs.which]"), ["steps", "inputs.which"]);
    assert_eq!(refs("has(inputs.x)"), ["inputs.x"]);
    assert_eq!(refs("inputs.n + inputs.n * 2"), ["inputs.n"]);
    assert_eq!(
        refs("{'a': inputs.a, 'b': [item.b, size(steps.s.output)]}"),
        ["inputs.a", "item.b", "steps.s"]
    );
    assert!(refs("1 + 2").is_empty());
}

#[test]
fn macro_variables_are_not_references() {
    assert_eq!(refs("steps.x.output.rows.map(r, r[0])"), ["steps.x"]);
    assert_eq!(
        refs("steps.a.output.rows.filter(r, r[0] in steps.b.output.ids).map(r, r.name)"),
        ["steps.a", "steps.b"]
    );
    // Inside the macro an outer variable is still a reference; a bound name is not, even
    // when it shadows a variable.
    assert_eq!(
        refs("inputs.l.all(x, x < inputs.max)"),
        ["inputs.l", "inputs.max"]
    );
    assert_eq!(refs("item.l.map(item, item.id)"), ["item.l"]);
    // Once out of the macro, the name is a reference again.
    assert_eq!(refs("[1].map(r, r) + [r]"), ["r"]);
}

#[test]
fn unknown_variable_names_the_available_ones() {
    let error = eval_err("input.region == 'emea'");
    assert_eq!(
        error,
        "evaluating `input.region == 'emea'`: unknown variable 'input' \
         (available variables: inputs, item, steps)"
    );
    let error = eval_err("inputs.region.lower()");
    assert!(
        error.contains("unknown function or method 'lower'"),
        "{error}"
    );
}

#[test]
fn missing_key_names_the_keys_there_are() {
    let error = eval_err("inputs.regoin");
    assert!(error.contains("no such key 'regoin'"), "{error}");
    assert!(
        error.contains("available keys: big, n, ratio, region, tags"),
        "{error}"
    );
    let error = eval_err("steps.orders.output['rowz']");
    assert!(error.contains("available keys: row_count, rows"), "{error}");
    // Inside a macro the path is not static: the message alone.
    let error = eval_err("steps.orders.output.rows.map(r, item.missing)");
    assert!(
        error.contains("available keys: id, name, nothing"),
        "{error}"
    );
}

#[test]
fn runtime_errors_are_readable() {
    assert_eq!(
        eval_err("inputs.n / 0"),
        "evaluating `inputs.n / 0`: division by zero"
    );
    let error = eval_err("inputs.tags[5]");
    assert!(error.contains("index 5 is out of bounds"), "{error}");
    let error = eval_err("inputs.region + 1");
    assert!(
        error.contains("'add' does not apply to string \"emea\" and int 1"),
        "{error}"
    );
    let error = eval_err("inputs.region > 1");
    assert!(
        error.contains("'_>_' applied to '(string, int)'"),
        "{error}"
    );
}

#[test]
fn compile_errors_quote_the_text_and_the_position() {
    let error = Expr::compile("inputs.n >").unwrap_err();
    let ExprError::Parse { position, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(position.is_some(), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("cannot parse `inputs.n >`: "), "{text}");
    assert!(text.ends_with("(at column 11)"), "{text}");
    assert_eq!(position, &Some((1, 11)));
    // The parser's own follow-up errors come after the syntax error.
    let text = Expr::compile("a + ?").unwrap_err().to_string();
    assert!(
        text.starts_with("cannot parse `a + ?`: Syntax error: mismatched input '?'"),
        "{text}"
    );
    assert!(text.contains("(at column 5)"), "{text}");
}

#[test]
fn long_text_is_refused_at_compile() {
    let text = format!("'{}'", "a".repeat(MAX_EXPR_BYTES));
    let error = Expr::compile(&text).unwrap_err();
    assert!(matches!(error, ExprError::TooLong { .. }), "{error:?}");
    assert!(error.to_string().contains("limit of 4096 bytes"));
}

#[test]
fn deep_macro_nesting_is_refused_at_compile() {
    let ok = "l.map(a, l.map(b, l.map(c, a + b + c)))";
    assert!(Expr::compile(ok).is_ok());
    let error = Expr::compile("l.map(a, l.map(b, l.map(c, l.map(d, a + b + c + d))))").unwrap_err();
    assert!(
        error.to_string().contains("4 deep; at most 3 levels"),
        "{error}"
    );
    // Chained macros are not nested.
    assert!(
        Expr::compile("l.map(a, a).map(b, b).filter(c, c > 0).map(d, d).all(e, e > 0)").is_ok()
    );
}

#[test]
fn deep_trees_are_refused_at_compile_and_the_deepest_allowed_evaluate() {
    // A chain of `+` nests one level per operator; the interpreter recurses per level.
    let sum = vec!["inputs.n"; MAX_DEPTH - 2].join(" + ");
    let value = Expr::compile(&sum).unwrap().eval(&vars()).unwrap();
    assert_eq!(value, json!(21 * (MAX_DEPTH as i64 - 2)));
    // The longest chain the text limit allows is refused, without overflowing the stack.
    let sum = vec!["a"; MAX_EXPR_BYTES / 2].join("+");
    let error = Expr::compile(&sum).unwrap_err();
    assert!(error.to_string().contains("at most 64 levels"), "{error}");
    // `&&` and `||` chains are balanced: long ones are fine.
    let and = vec!["true"; MAX_EXPR_BYTES / 9].join(" && ");
    assert_eq!(Expr::compile(&and).unwrap().eval_bool(&vars()), Ok(true));
    // Brackets past the parser's nesting limit: refused too.
    let nested = format!("{}1{}", "[".repeat(2000), "]".repeat(2000));
    let error = Expr::compile(&nested).unwrap_err();
    assert!(matches!(error, ExprError::Parse { .. }), "{error:?}");
}

#[test]
fn exprs_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<Expr>();
    shared::<Template>();
}

fn render(template: Value) -> Value {
    Template::compile(&template)
        .unwrap()
        .render(&vars())
        .unwrap()
}

#[test]
fn a_template_of_one_expression_keeps_the_type() {
    assert_eq!(render(json!("${{ inputs.tags }}")), json!(["a", "b"]));
    assert_eq!(render(json!("  ${{inputs.n}} ")), json!(21));
    assert_eq!(
        render(json!("${{ item }}")),
        json!({"id": 7, "name": "seven", "nothing": null})
    );
    assert_eq!(render(json!("${{ inputs.n > 1 }}")), json!(true));
    assert_eq!(render(json!("${{ item.nothing }}")), json!(null));
}

#[test]
fn a_template_mixing_text_interpolates() {
    assert_eq!(
        render(json!(
            "region ${{ inputs.region }} has ${{ inputs.n }} of ${{ inputs.tags }}; ${{ item.nothing }}"
        )),
        json!(r#"region emea has 21 of ["a","b"]; null"#)
    );
    assert_eq!(
        render(json!("${{ inputs.n }}${{ inputs.n }}")),
        json!("2121")
    );
}

#[test]
fn templates_render_recursively() {
    let template = json!({
        "warehouse": "main",
        "params": ["${{ inputs.region }}", 5, {"limit": "${{ inputs.n * 2 }}"}],
        "flag": true
    });
    assert_eq!(
        render(template),
        json!({"warehouse": "main", "params": ["emea", 5, {"limit": 42}], "flag": true})
    );
}

#[test]
fn braces_and_strings_inside_an_expression_do_not_close_it() {
    assert_eq!(
        render(json!("${{ {'a': {'b': 1}} }}")),
        json!({"a": {"b": 1}})
    );
    assert_eq!(render(json!("${{ '}}' + \"}}\" }}")), json!("}}}}"));
    assert_eq!(render(json!("${{ {'a': 1}}}")), json!({"a": 1}));
}

#[test]
fn double_dollar_escapes_the_opening() {
    let template = Template::compile(&json!("literal $${{ not.an.expr }}")).unwrap();
    assert_eq!(
        template.literal(),
        Some(&json!("literal ${{ not.an.expr }}"))
    );
    assert_eq!(
        render(json!("$${{ x }} and ${{ inputs.n }}")),
        json!("${{ x }} and 21")
    );
}

#[test]
fn a_template_without_expressions_is_a_literal() {
    let value = json!({"sql": "select 1", "n": [1, 2.5, null, true], "price": "$5 {{ not }}"});
    let template = Template::compile(&value).unwrap();
    assert_eq!(template.literal(), Some(&value));
    assert_eq!(template.render(&Vars::new()).unwrap(), value);
    assert!(template.references().is_empty());
    let template = Template::compile(&json!({"a": ["${{ inputs.n }}"]})).unwrap();
    assert_eq!(template.literal(), None);
}

#[test]
fn template_references_cover_every_string() {
    let template = Template::compile(&json!({
        "a": "${{ inputs.region }}",
        "b": ["x ${{ steps.orders.output.rows.map(r, r[0]) }} ${{ inputs.region }}"],
    }))
    .unwrap();
    let refs: Vec<String> = template
        .references()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(refs, ["inputs.region", "steps.orders"]);
    assert_eq!(template.expressions().len(), 3);
}

#[test]
fn template_errors_name_the_json_path() {
    let error = Template::compile_at(&json!({"region": "${{ inputs. }}"}), "args").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("at args.region: cannot parse `inputs.`"),
        "{error}"
    );
    let error = Template::compile(&json!({"list": [1, "${{ inputs.n"]})).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("at list[1]: bad template string"),
        "{error}"
    );
    assert!(error.to_string().contains("without its closing"), "{error}");
    let error = Template::compile(&json!({"odd key": "${{ }}"})).unwrap_err();
    assert!(
        error.to_string().starts_with(r#"at ["odd key"]: "#),
        "{error}"
    );
    assert!(error.to_string().contains("empty"), "{error}");
    let error = Template::compile_at(&json!({"n": "${{ inputs.missing }}"}), "args")
        .unwrap()
        .render(&vars())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("at args.n: evaluating `inputs.missing`: no such key"),
        "{error}"
    );
}
