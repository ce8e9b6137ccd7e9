//! `train` end to end: the feature pipeline and an estimator against scikit-learn, the
//! portable model's round trip, and bad inputs.

use super::*;
use serde_json::json;

fn num(x: f64) -> Cell {
    Cell::Number(x)
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Ages with gaps, a city with gaps, an income, and whether the customer bought.
fn customers() -> Dataset {
    let age = [
        Some(25.0),
        Some(32.0),
        None,
        Some(51.0),
        Some(46.0),
        Some(38.0),
        Some(29.0),
        None,
        Some(60.0),
        Some(41.0),
        Some(35.0),
        Some(23.0),
        Some(55.0),
        Some(48.0),
        Some(31.0),
        Some(44.0),
    ];
    let city = [
        Some("Paris"),
        Some("Berlin"),
        Some("Paris"),
        None,
        Some("Rome"),
        Some("Berlin"),
        Some("Rome"),
        Some("Paris"),
        Some("Berlin"),
        None,
        Some("Rome"),
        Some("Paris"),
        Some("Berlin"),
        Some("Rome"),
        Some("Paris"),
        Some("Berlin"),
    ];
    let income = [
        30.5, 42.0, 38.2, 80.1, 66.3, 51.0, 33.3, 45.9, 90.2, 58.8, 40.0, 28.7, 75.5, 61.2, 36.6,
        57.4,
    ];
    let bought = [
        "no", "no", "yes", "yes", "yes", "no", "no", "yes", "yes", "yes", "no", "no", "yes", "no",
        "no", "yes",
    ];
    let rows = (0..16)
        .map(|i| {
            vec![
                age[i].map_or(Cell::Missing, num),
                city[i].map_or(Cell::Missing, text),
                num(income[i]),
                text(bought[i]),
            ]
        })
        .collect();
    Dataset {
        columns: names(&["age", "city", "income", "bought"]),
        rows,
    }
}

fn assert_close(got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "{got} vs {want}");
}

#[test]
fn a_mixed_table_is_imputed_standardised_one_hot_encoded_and_fitted_like_sklearn() {
    // ~/.cache/datamcp/mlflow-3.17.2/bin/python (scikit-learn 1.9.1, pandas), the table above
    // as a DataFrame df, city's None filled with "(missing)":
    //   ct = ColumnTransformer([
    //       ("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), ["age", "income"]),
    //       ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])])
    //   m = make_pipeline(ct, LogisticRegression(C=1.0, tol=1e-10, max_iter=10000)).fit(X, df["bought"])
    //   m[-1].coef_ → [[1.0797681005117188, 0.722380597483775, 0.35718031117842514,
    //                   -0.1761408398013245, 0.4304972852071611, -0.6115367807645506]]
    //   m[-1].intercept_ → [0.11685537341565043]
    //   scaler mean_ → [39.85714285714286, 52.23125], scale_ → [10.221650691407081, 18.07867247442411]
    //   m.predict_proba([[nan, "Madrid", 50.0], [50.0, "Rome", 70.0]])
    //     → [[0.4930754553767509, 0.5069245446232491], [0.2164016954260769, 0.7835983045739231]]
    let mut spec = TrainSpec::new("bought", Algorithm::logistic());
    spec.features = Some(names(&["age", "income", "city"]));
    spec.test_fraction = 0.0;
    let trained = train(&customers(), &spec).expect("trains");
    let report = &trained.report;
    assert_eq!(
        report.features,
        [
            "age",
            "income",
            "city=(missing)",
            "city=Berlin",
            "city=Paris",
            "city=Rome"
        ]
    );
    assert_eq!(report.columns[0].imputed, 2);
    assert_close(
        report.columns[0].mean.expect("numeric"),
        39.85714285714286,
        1e-12,
    );
    assert_close(
        report.columns[0].std.expect("numeric"),
        10.221650691407081,
        1e-12,
    );
    assert_close(
        report.columns[1].std.expect("numeric"),
        18.07867247442411,
        1e-12,
    );
    assert_eq!(report.classes, Some(names(&["no", "yes"])));
    assert_eq!(report.positive_class.as_deref(), Some("yes"));
    assert!(report.converged);
    let coefficients = report
        .coefficients
        .as_ref()
        .expect("logistic has coefficients");
    assert_eq!(coefficients.len(), 1);
    let want = [
        1.0797681005117188,
        0.722380597483775,
        0.35718031117842514,
        -0.1761408398013245,
        0.4304972852071611,
        -0.6115367807645506,
    ];
    for (got, want) in coefficients[0].weights.iter().zip(want) {
        assert_close(got.value, want, 1e-6);
    }
    assert_close(coefficients[0].intercept, 0.11685537341565043, 1e-6);
    assert!(report.test_outcomes.is_empty());
    assert!(report.warnings.iter().any(|w| w.contains("no test rows")));

    let predictions = trained
        .model
        .predict(
            &names(&["city", "income", "age"]),
            &[
                vec![text("Madrid"), num(50.0), Cell::Missing],
                vec![text("Rome"), num(70.0), num(50.0)],
            ],
        )
        .expect("predicts");
    let p = predictions[0].probabilities.as_ref().expect("a classifier");
    assert_eq!(p[1].0, "yes");
    assert_close(p[1].1, 0.5069245446232491, 1e-6);
    assert_eq!(predictions[0].value, json!("yes"));
    let p = predictions[1].probabilities.as_ref().expect("a classifier");
    assert_close(p[1].1, 0.7835983045739231, 1e-6);
}

#[test]
fn the_report_holds_test_outcomes_for_the_held_out_rows() {
    let spec = TrainSpec::new("bought", Algorithm::logistic());
    let trained = train(&customers(), &spec).expect("trains");
    let report = &trained.report;
    assert_eq!(
        (report.rows.train, report.rows.test),
        (13, 3),
        "round(0.2 · 16) = 3"
    );
    assert_eq!(report.test_outcomes.len(), 3);
    let data = customers();
    for outcome in &report.test_outcomes {
        let Cell::Text(label) = &data.rows[outcome.row][3] else {
            panic!("the target is text");
        };
        assert_eq!(outcome.actual, json!(label));
        let score = outcome
            .score
            .expect("binary outcomes carry the positive probability");
        assert_eq!(
            outcome.predicted,
            json!(if score > 0.5 { "yes" } else { "no" })
        );
    }
}

#[test]
fn numeric_class_labels_stay_numbers() {
    let data = Dataset {
        columns: names(&["x", "y"]),
        rows: (0..10)
            .map(|i| vec![num(f64::from(i)), num(if i < 5 { 0.0 } else { 1.0 })])
            .collect(),
    };
    let spec = TrainSpec::new("y", Algorithm::tree(TreeTask::Classification));
    let trained = train(&data, &spec).expect("trains");
    assert_eq!(trained.model.classes, Some(names(&["0", "1"])));
    let predictions = trained
        .model
        .predict(&names(&["x"]), &[vec![num(8.0)]])
        .expect("predicts");
    assert_eq!(predictions[0].value, json!(1));
}

/// Whether two predictions agree: the same label, numbers and probabilities within 1e-12.
/// (serde_json without its `float_roundtrip` feature may read a float back one unit in the
/// last place off, so a reloaded model can differ from the original by that much.)
fn same_prediction(a: &Prediction, b: &Prediction) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(1.0);
    let values = match (a.value.as_f64(), b.value.as_f64()) {
        (Some(x), Some(y)) if a.probabilities.is_none() => close(x, y),
        _ => a.value == b.value,
    };
    let probabilities = match (&a.probabilities, &b.probabilities) {
        (Some(p), Some(q)) => p
            .iter()
            .zip(q)
            .all(|((c, x), (d, y))| c == d && close(*x, *y)),
        (None, None) => true,
        _ => false,
    };
    values && probabilities
}

#[test]
fn every_model_round_trips_through_json_and_predicts_the_same() {
    let data = customers();
    let mut regression = TrainSpec::new("income", Algorithm::LinearRegression);
    regression.features = Some(names(&["age", "city"]));
    let specs = [
        TrainSpec::new("bought", Algorithm::logistic()),
        TrainSpec::new("city", Algorithm::logistic()),
        TrainSpec::new("bought", Algorithm::tree(TreeTask::Classification)),
        TrainSpec::new("income", Algorithm::tree(TreeTask::Regression)),
        regression,
    ];
    for spec in specs {
        let trained = train(&data, &spec).expect("trains");
        let text = serde_json::to_string(&trained.model).expect("serialises");
        let back = Model::from_json(&text).expect("reads back");
        assert_eq!(back.pipeline.feature_names(), trained.model.features);
        let before = trained
            .model
            .predict(&data.columns, &data.rows)
            .expect("predicts");
        let after = back.predict(&data.columns, &data.rows).expect("predicts");
        for (a, b) in before.iter().zip(&after) {
            assert!(
                same_prediction(a, b),
                "{}: {a:?} vs {b:?}",
                spec.algorithm.name()
            );
        }
        for outcome in &trained.report.test_outcomes {
            assert_eq!(before[outcome.row].value, outcome.predicted);
        }
    }
}

#[test]
fn the_model_json_has_the_documented_shape() {
    let trained = train(
        &customers(),
        &TrainSpec::new("bought", Algorithm::logistic()),
    )
    .expect("trains");
    let value = serde_json::to_value(&trained.model).expect("serialises");
    assert_eq!(value["format"], json!("datamcp-model/1"));
    assert_eq!(value["task"], json!("classification"));
    assert_eq!(
        value["estimator"]["algorithm"],
        json!("logistic_regression")
    );
    assert_eq!(value["pipeline"]["columns"][0]["kind"], json!("numeric"));
    assert_eq!(
        value["pipeline"]["columns"][1]["kind"],
        json!("categorical")
    );
}

#[test]
fn a_spec_reads_from_json_with_defaults() {
    let spec: TrainSpec = serde_json::from_value(json!({
        "target": "y",
        "algorithm": {"kind": "decision_tree", "task": "regression"}
    }))
    .expect("parses");
    assert_eq!(
        spec,
        TrainSpec::new("y", Algorithm::tree(TreeTask::Regression))
    );
    let spec: TrainSpec = serde_json::from_value(json!({
        "target": "y",
        "algorithm": {"kind": "logistic_regression", "c": 0.5}
    }))
    .expect("parses");
    assert_eq!(
        spec.algorithm,
        Algorithm::LogisticRegression {
            c: 0.5,
            max_iter: 100
        }
    );
}

#[test]
fn an_unknown_target_column_is_an_error_listing_the_columns() {
    let err = train(
        &customers(),
        &TrainSpec::new("price", Algorithm::LinearRegression),
    )
    .expect_err("no such column");
    assert!(matches!(err, TrainError::UnknownColumn { .. }));
    assert!(
        err.to_string().contains("age, city, income, bought"),
        "{err}"
    );
}

#[test]
fn an_unknown_feature_column_is_an_error() {
    let mut spec = TrainSpec::new("income", Algorithm::LinearRegression);
    spec.features = Some(names(&["age", "height"]));
    let err = train(&customers(), &spec).expect_err("no such column");
    assert!(err.to_string().contains("'height'"), "{err}");
}

#[test]
fn a_text_target_for_a_regression_is_an_error_naming_a_classifier() {
    let err = train(
        &customers(),
        &TrainSpec::new("bought", Algorithm::LinearRegression),
    )
    .expect_err("text target");
    assert!(matches!(err, TrainError::TargetType(_)));
    assert!(err.to_string().contains("logistic_regression"), "{err}");
    let err = train(
        &customers(),
        &TrainSpec::new("city", Algorithm::tree(TreeTask::Regression)),
    )
    .expect_err("text target");
    assert!(matches!(err, TrainError::TargetType(_)));
}

#[test]
fn one_class_only_is_an_error_for_logistic_regression() {
    let mut data = customers();
    for row in &mut data.rows {
        row[3] = text("yes");
    }
    let err =
        train(&data, &TrainSpec::new("bought", Algorithm::logistic())).expect_err("one class");
    assert!(matches!(err, TrainError::NotEnoughData(_)));
    assert!(err.to_string().contains("at least two"), "{err}");
}

#[test]
fn empty_data_is_an_error() {
    let empty = Dataset {
        columns: names(&["x", "y"]),
        rows: vec![],
    };
    let err =
        train(&empty, &TrainSpec::new("y", Algorithm::LinearRegression)).expect_err("no rows");
    assert!(matches!(err, TrainError::NotEnoughData(_)), "{err}");
    let err = train(
        &Dataset::default(),
        &TrainSpec::new("y", Algorithm::LinearRegression),
    )
    .expect_err("no columns");
    assert!(matches!(err, TrainError::NotEnoughData(_)), "{err}");
    let no_targets = Dataset {
        columns: names(&["x", "y"]),
        rows: vec![vec![num(1.0), Cell::Missing], vec![num(2.0), num(f64::NAN)]],
    };
    let err = train(
        &no_targets,
        &TrainSpec::new("y", Algorithm::LinearRegression),
    )
    .expect_err("no target values");
    assert!(err.to_string().contains("no row has a value"), "{err}");
}

#[test]
fn malformed_data_and_specs_are_errors() {
    let ragged = Dataset {
        columns: names(&["x", "y"]),
        rows: vec![vec![num(1.0)]],
    };
    let spec = TrainSpec::new("y", Algorithm::LinearRegression);
    assert!(matches!(
        train(&ragged, &spec),
        Err(TrainError::InvalidData(_))
    ));
    let twice = Dataset {
        columns: names(&["x", "x"]),
        rows: vec![],
    };
    assert!(matches!(
        train(&twice, &spec),
        Err(TrainError::InvalidData(_))
    ));
    let infinite = Dataset {
        columns: names(&["x", "y"]),
        rows: vec![vec![num(f64::INFINITY), num(1.0)]],
    };
    assert!(matches!(
        train(&infinite, &spec),
        Err(TrainError::InvalidData(_))
    ));

    let data = customers();
    let mut bad = TrainSpec::new("income", Algorithm::LinearRegression);
    bad.test_fraction = 1.0;
    assert!(matches!(
        train(&data, &bad),
        Err(TrainError::InvalidSpec(_))
    ));
    bad.test_fraction = f64::NAN;
    assert!(matches!(
        train(&data, &bad),
        Err(TrainError::InvalidSpec(_))
    ));
    let bad = TrainSpec::new(
        "bought",
        Algorithm::LogisticRegression {
            c: 0.0,
            max_iter: 100,
        },
    );
    assert!(matches!(
        train(&data, &bad),
        Err(TrainError::InvalidSpec(_))
    ));
    let mut bad = TrainSpec::new("income", Algorithm::LinearRegression);
    bad.features = Some(names(&["income"]));
    assert!(matches!(
        train(&data, &bad),
        Err(TrainError::InvalidSpec(_))
    ));
}

#[test]
fn rows_without_a_target_are_left_out_with_a_warning() {
    let mut data = customers();
    data.rows[0][2] = Cell::Missing;
    let trained = train(
        &data,
        &TrainSpec::new("income", Algorithm::LinearRegression),
    )
    .expect("trains");
    assert_eq!(trained.report.rows.used, 15);
    assert_eq!(trained.report.rows.dropped_missing_target, 1);
    assert!(
        trained
            .report
            .warnings
            .iter()
            .any(|w| w.contains("left out"))
    );
    assert!(
        trained
            .report
            .warnings
            .iter()
            .any(|w| w.contains("collinear")),
        "one-hot city columns sum to the intercept"
    );
}

#[test]
fn a_damaged_or_foreign_model_is_refused() {
    let trained = train(
        &customers(),
        &TrainSpec::new("bought", Algorithm::tree(TreeTask::Classification)),
    )
    .expect("trains");
    let mut value = serde_json::to_value(&trained.model).expect("serialises");
    value["format"] = json!("datamcp-model/9");
    let err = Model::from_json(&value.to_string()).expect_err("other format");
    assert!(err.to_string().contains("datamcp-model/1"), "{err}");

    let mut value = serde_json::to_value(&trained.model).expect("serialises");
    value["estimator"]["nodes"][0]["left"] = json!(0);
    assert!(matches!(
        Model::from_json(&value.to_string()),
        Err(TrainError::InvalidModel(_))
    ));
    assert!(matches!(
        Model::from_json("{\"format\": 1}"),
        Err(TrainError::InvalidModel(_))
    ));
}

#[test]
fn predicting_without_a_column_the_model_reads_is_an_error() {
    let trained = train(
        &customers(),
        &TrainSpec::new("bought", Algorithm::logistic()),
    )
    .expect("trains");
    let err = trained
        .model
        .predict(&names(&["age", "income"]), &[vec![num(30.0), num(40.0)]])
        .expect_err("city is needed");
    assert!(err.to_string().contains("'city'"), "{err}");
}
