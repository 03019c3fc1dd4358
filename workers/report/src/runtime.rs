//! The Lambda runtime loop: `lambda_runtime` polling the Runtime API, kept alive across the
//! errors that end its loop (an idle long-poll answered with 408 by the emulator, a dropped
//! connection) by starting it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::error::Error;
use crate::handler::Handler;

/// Set in a process re-executed with a completed environment (guards against a loop).
const REEXEC_MARK: &str = "HELIOS_REPORT_ENV_COMPLETED";

/// What `lambda_runtime` needs in the environment that is missing or in a form it cannot use
/// (it panics on those): the fixes to apply, or an error naming what cannot be fixed.
///
/// * `AWS_LAMBDA_RUNTIME_API` and `AWS_LAMBDA_FUNCTION_NAME` are required;
/// * an API address with a path (`127.0.0.1:PORT/.rt/F`, as the emulator serves functions)
///   gets an `http://` scheme, without which it is not a valid URI;
/// * `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (default 128) and `AWS_LAMBDA_FUNCTION_VERSION`
///   (default `$LATEST`) are filled in, as AWS always sets them.
pub fn env_fixes(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(&'static str, String)>, Error> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let mut missing = Vec::new();
    let mut fixes = Vec::new();
    match get("AWS_LAMBDA_RUNTIME_API") {
        None => missing.push("AWS_LAMBDA_RUNTIME_API"),
        Some(api) if !api.contains("://") && api.contains('/') => {
            fixes.push(("AWS_LAMBDA_RUNTIME_API", format!("http://{api}")));
        }
        Some(_) => {}
    }
    if get("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        missing.push("AWS_LAMBDA_FUNCTION_NAME");
    }
    if get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").is_none_or(|v| v.parse::<i32>().is_err()) {
        fixes.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()));
    }
    if get("AWS_LAMBDA_FUNCTION_VERSION").is_none() {
        fixes.push(("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()));
    }
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "not running under a Lambda Runtime API: set {} (AWS Lambda sets them; with the local \
             emulator: AWS_LAMBDA_RUNTIME_API=$LAMBDA_RUNTIME_API_BASE/helios-report \
             AWS_LAMBDA_FUNCTION_NAME=helios-report)",
            missing.join(" and ")
        )));
    }
    Ok(fixes)
}

/// Replace this process by itself with the environment completed (same pid, same arguments),
/// since the environment cannot be changed in place without `unsafe`.
#[cfg(unix)]
fn reexec(fixes: Vec<(&'static str, String)>) -> Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Error::Runtime(format!("cannot find the current executable: {e}")),
    };
    tracing::info!(fixes = ?fixes, "completing the Lambda environment and re-executing");
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(fixes)
        .env(REEXEC_MARK, "1")
        .exec();
    Error::Runtime(format!(
        "cannot re-execute with the completed environment: {err}"
    ))
}

#[cfg(not(unix))]
fn reexec(fixes: Vec<(&'static str, String)>) -> Error {
    let names: Vec<&str> = fixes.iter().map(|f| f.0).collect();
    Error::Config(format!("set {} in the environment", names.join(", ")))
}

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A loop that ran at least this long counts as healthy: the backoff starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(5);

/// The next pause after a loop that ran for `ran`.
pub fn next_backoff(current: Duration, ran: Duration) -> Duration {
    if ran >= HEALTHY_RUN {
        MIN_BACKOFF
    } else {
        (current * 2).clamp(MIN_BACKOFF, MAX_BACKOFF)
    }
}

/// Serve invocations until the process is stopped.
pub async fn serve(handler: Arc<Handler>) -> Result<(), Error> {
    let fixes = env_fixes(|k| std::env::var(k).ok())?;
    if !fixes.is_empty() {
        if std::env::var_os(REEXEC_MARK).is_some() {
            return Err(Error::Config(format!(
                "the Lambda environment is still incomplete: {fixes:?}"
            )));
        }
        return Err(reexec(fixes));
    }
    let mut backoff = MIN_BACKOFF;
    loop {
        let h = handler.clone();
        let svc = service_fn(move |event: LambdaEvent<Value>| {
            let h = h.clone();
            async move {
                if is_probe(&event.payload) {
                    return Ok(serde_json::json!({"probe": "ok"}));
                }
                let response = h.handle_value(event.payload).await?;
                serde_json::to_value(response).map_err(|e| Error::Config(e.to_string()))
            }
        });
        let started = Instant::now();
        // Spawned, so that a panic inside `lambda_runtime` (it panics on a /next answer without
        // a request id, which is how the emulator's 408 looks) ends this loop, not the process.
        let outcome = match tokio::spawn(lambda_runtime::run(svc)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(join) => format!("runtime loop panicked: {join}"),
        };
        let ran = started.elapsed();
        backoff = next_backoff(backoff, ran);
        tracing::info!(
            error = %outcome,
            ran_ms = u64::try_from(ran.as_millis()).unwrap_or(u64::MAX),
            retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
            "runtime API poll ended (an idle poll ends with 408); polling again"
        );
        tokio::time::sleep(backoff).await;
    }
}

/// The operator's reachability probe (`{"heliosProbe": true}`, sent as a DryRun invocation,
/// which real Lambda never delivers but emulators do): answered without producing a report.
pub fn is_probe(payload: &Value) -> bool {
    payload.get("heliosProbe").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_probe_is_a_probe() {
        assert!(is_probe(&serde_json::json!({"heliosProbe": true})));
        assert!(!is_probe(&serde_json::json!({"heliosProbe": "yes"})));
        assert!(!is_probe(&serde_json::json!({"anomalyId": "a"})));
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn env_fixes_complete_what_lambda_runtime_needs() {
        let err = env_fixes(env(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:1")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AWS_LAMBDA_FUNCTION_NAME") && !err.contains("set AWS_LAMBDA_RUNTIME_API"),
            "{err}"
        );
        let fixes = env_fixes(env(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9/.rt/helios-report"),
            ("AWS_LAMBDA_FUNCTION_NAME", "helios-report"),
        ]))
        .unwrap();
        assert_eq!(
            fixes,
            [
                (
                    "AWS_LAMBDA_RUNTIME_API",
                    "http://127.0.0.1:9/.rt/helios-report".to_string()
                ),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ]
        );
        let complete = env(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "3"),
        ]);
        assert!(env_fixes(complete).unwrap().is_empty());
    }

    #[test]
    fn backoff_grows_and_resets() {
        let b = next_backoff(MIN_BACKOFF, Duration::ZERO);
        assert_eq!(b, MIN_BACKOFF * 2);
        assert_eq!(
            next_backoff(Duration::from_secs(4), Duration::ZERO),
            MAX_BACKOFF
        );
        assert_eq!(
            next_backoff(MAX_BACKOFF, Duration::from_secs(60)),
            MIN_BACKOFF
        );
    }
}
