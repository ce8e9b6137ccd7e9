//! Stopping a fit whose call has ended. Training runs on a blocking thread that cannot be
//! killed, so the call's cancellation is handed to that thread and the long loops (the Gram
//! matrix, eigen-sweeps, solver iterations, tree nodes) look at it and end early.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `work` on this thread with `stop` as its stop signal.
pub fn run_until<T>(stop: Arc<AtomicBool>, work: impl FnOnce() -> T) -> T {
    STOP.with(|slot| *slot.borrow_mut() = Some(stop));
    let result = work();
    STOP.with(|slot| *slot.borrow_mut() = None);
    result
}

/// Whether this thread's work should end now.
pub(crate) fn stopped() -> bool {
    STOP.with(|slot| {
        slot.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_is_seen_only_inside_its_run() {
        let flag = Arc::new(AtomicBool::new(true));
        assert!(!stopped());
        assert!(run_until(Arc::clone(&flag), stopped));
        assert!(!stopped());
    }

    #[test]
    fn a_stopped_fit_ends_with_an_error_not_a_half_model() {
        use crate::ml::train::{Algorithm, Cell, Dataset, TrainSpec, train};
        let data = Dataset {
            columns: vec!["x".into(), "y".into()],
            rows: (0..50)
                .map(|i| {
                    vec![
                        Cell::Number(f64::from(i)),
                        Cell::Number(f64::from(2 * i + 1)),
                    ]
                })
                .collect(),
        };
        let spec = TrainSpec::new("y", Algorithm::LinearRegression);
        let error = run_until(Arc::new(AtomicBool::new(true)), || train(&data, &spec))
            .expect_err("stopped");
        assert!(error.to_string().contains("stopped"), "{error}");
        assert!(train(&data, &spec).is_ok());
    }
}
