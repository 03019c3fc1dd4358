//! `podrun NAMESPACE KIND/NAME POD HELIOS [KEY=VALUE...]`: run one pod of a workload as a local
//! process from the pod template the operator wrote (see `helios_e2e::podrun`). Prints each
//! moved listen address as `KEY=ADDR`, then replaces itself with the worker.

use helios_e2e::StackEnv;
use helios_e2e::kubectl::Kubectl;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [namespace, workload, pod, helios, extra @ ..] = args.as_slice() else {
        eprintln!("usage: podrun NAMESPACE KIND/NAME POD HELIOS [KEY=VALUE...]");
        return ExitCode::from(2);
    };
    let Some((kind, name)) = workload.split_once('/') else {
        eprintln!("podrun: workload must be KIND/NAME, got {workload}");
        return ExitCode::from(2);
    };
    let kubectl = match StackEnv::load().and_then(|env| Kubectl::new(&env)) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("podrun: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = match helios_e2e::podrun::resolve(&kubectl, namespace, kind, name, pod) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("podrun: {kind}/{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let extra: Vec<(&str, &str)> = extra.iter().filter_map(|kv| kv.split_once('=')).collect();
    let mut stdout = std::io::stdout();
    for (key, addr) in &local.listen {
        let _ = writeln!(stdout, "{key}={addr}");
    }
    let _ = stdout.flush();
    let err = local.command(Path::new(helios), &extra).exec();
    eprintln!("podrun: exec {helios}: {err}");
    ExitCode::FAILURE
}
