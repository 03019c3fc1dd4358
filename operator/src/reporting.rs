//! The report hook check behind `ReportHookReady`: the Lambda function is `Active`
//! (GetFunction) and the S3 bucket answers HeadBucket. Every failure becomes a condition reason.

use crate::conditions::Cond;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, State};
use helios_crds::conditions::REPORT_HOOK_READY;
use helios_crds::pipeline::ReportingSpec;
use std::time::Duration;

/// How long the whole check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(12);

/// Which AWS service a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// AWS Lambda.
    Lambda,
    /// Amazon S3.
    S3,
}

/// What went wrong talking to a service, reduced to what decides the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The service.
    pub service: Service,
    /// HTTP status, when a response arrived.
    pub http_status: Option<u16>,
    /// The service's error code (`AccessDeniedException`, `ResourceNotFoundException`, …).
    pub code: Option<String>,
    /// The full error text.
    pub message: String,
}

/// The condition reason for a failure (stable, CamelCase).
pub fn reason(f: &Failure) -> &'static str {
    let code = f.code.as_deref().unwrap_or_default();
    let text = f.message.to_ascii_lowercase();
    let denied = f.http_status == Some(403)
        || code.contains("AccessDenied")
        || code.contains("InvalidAccessKeyId")
        || code.contains("SignatureDoesNotMatch")
        || code.contains("UnrecognizedClient");
    let missing =
        f.http_status == Some(404) || code.contains("NotFound") || code.contains("NoSuchBucket");
    if text.contains("credentials") && f.http_status.is_none() {
        return "CredentialsMissing";
    }
    if code == "LambdaNotResponding" {
        return "LambdaNotResponding";
    }
    if code == "LambdaNotActive" {
        return "LambdaNotActive";
    }
    match (f.service, denied, missing, f.http_status) {
        (Service::Lambda, true, _, _) => "LambdaAccessDenied",
        (Service::S3, true, _, _) => "BucketAccessDenied",
        (Service::Lambda, _, true, _) => "LambdaFunctionNotFound",
        (Service::S3, _, true, _) => "BucketNotFound",
        (Service::Lambda, _, _, None) => "LambdaUnreachable",
        (Service::S3, _, _, None) => "S3Unreachable",
        (Service::Lambda, _, _, Some(_)) => "LambdaCheckFailed",
        (Service::S3, _, _, Some(_)) => "S3CheckFailed",
    }
}

/// The failure of call `what` (e.g. `GetFunction f`) to `service`.
fn failure<E: ProvideErrorMetadata + std::error::Error + 'static>(
    service: Service,
    what: &str,
    err: &aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
) -> Failure {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    // A response that arrived is summarised by its status, code and message; a request that
    // never got one (DNS, connection refused, credentials) keeps the whole error chain.
    let message = match (status, err.message()) {
        (Some(status), Some(text)) => match &code {
            Some(code) => format!("HTTP {status} {code}: {text}"),
            None => format!("HTTP {status}: {text}"),
        },
        (Some(status), None) => format!("HTTP {status} {}", code.as_deref().unwrap_or("")),
        (None, _) => aws_sdk_lambda::error::DisplayErrorContext(err).to_string(),
    };
    Failure {
        service,
        http_status: status,
        code,
        message: format!("{what}: {}", message.trim_end()),
    }
}

/// Load the operator's AWS settings (environment, profile, IRSA) once at startup.
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Check the report hook; `NotConfigured` (True) when the pipeline has no `reporting`.
pub async fn check(spec: Option<&ReportingSpec>, base: &SdkConfig) -> Cond {
    let Some(spec) = spec else {
        return Cond::ok(REPORT_HOOK_READY, "NotConfigured", "no reporting section");
    };
    match tokio::time::timeout(CHECK_TIMEOUT, check_both(spec, base)).await {
        Ok(Ok(message)) => Cond::ok(REPORT_HOOK_READY, "ReportHookReady", message),
        Ok(Err(f)) => Cond::fail(REPORT_HOOK_READY, reason(&f), f.message),
        Err(_) => Cond::fail(
            REPORT_HOOK_READY,
            "ReportHookTimeout",
            format!("the Lambda/S3 check did not finish in {CHECK_TIMEOUT:?}"),
        ),
    }
}

async fn check_both(spec: &ReportingSpec, base: &SdkConfig) -> Result<String, Failure> {
    let lambda = check_lambda(spec, base).await?;
    check_bucket(spec, base).await?;
    Ok(format!("{lambda}; bucket {} is reachable", spec.s3.bucket))
}

/// How long one Lambda API call of the check may take.
const LAMBDA_CALL_TIMEOUT: Duration = Duration::from_secs(4);

fn lambda_client(spec: &ReportingSpec, base: &SdkConfig) -> aws_sdk_lambda::Client {
    let mut conf = aws_sdk_lambda::config::Builder::from(base);
    if let Some(region) = &spec.lambda.region {
        conf = conf.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &spec.lambda.endpoint {
        conf = conf.endpoint_url(endpoint);
    }
    aws_sdk_lambda::Client::from_conf(conf.build())
}

/// The function is Active (GetFunction). An endpoint override that does not speak GetFunction
/// (Lambda emulators implement only Invoke) is probed with a `DryRun` invocation instead.
async fn check_lambda(spec: &ReportingSpec, base: &SdkConfig) -> Result<String, Failure> {
    let client = lambda_client(spec, base);
    let name = &spec.lambda.function_name;
    let get = client
        .get_function()
        .function_name(name)
        .set_qualifier(spec.lambda.qualifier.clone())
        .send();
    let answered = match tokio::time::timeout(LAMBDA_CALL_TIMEOUT, get).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) if e.code().is_some() || spec.lambda.endpoint.is_none() => {
            return Err(failure(Service::Lambda, &format!("GetFunction {name}"), &e));
        }
        Ok(Err(_)) => Err(()),
        Err(_) if spec.lambda.endpoint.is_none() => {
            return Err(Failure {
                service: Service::Lambda,
                http_status: None,
                code: None,
                message: format!("GetFunction {name} did not answer in {LAMBDA_CALL_TIMEOUT:?}"),
            });
        }
        Err(_) => Err(()),
    };
    let Ok(out) = answered else {
        return dry_run(&client, spec).await;
    };
    let state = out
        .configuration()
        .and_then(|c| c.state())
        .cloned()
        // Functions created before states existed report none: they are usable.
        .unwrap_or(State::Active);
    if state != State::Active {
        return Err(Failure {
            service: Service::Lambda,
            http_status: Some(200),
            code: Some("LambdaNotActive".into()),
            message: format!("function {name} is in state {state:?}, not Active"),
        });
    }
    Ok(format!("function {name} is Active"))
}

/// Invoke with `InvocationType=DryRun`: AWS checks existence and permission without running the
/// function; an emulator runs it with a probe payload, and any answer proves it is served.
async fn dry_run(client: &aws_sdk_lambda::Client, spec: &ReportingSpec) -> Result<String, Failure> {
    let name = &spec.lambda.function_name;
    let invoke = client
        .invoke()
        .function_name(name)
        .set_qualifier(spec.lambda.qualifier.clone())
        .invocation_type(InvocationType::DryRun)
        .payload(Blob::new(br#"{"heliosProbe":true}"#.to_vec()))
        .send();
    match tokio::time::timeout(LAMBDA_CALL_TIMEOUT, invoke).await {
        Ok(Ok(_)) => Ok(format!("function {name} answers invocations")),
        Ok(Err(e)) => Err(failure(Service::Lambda, &format!("invoking {name}"), &e)),
        Err(_) => Err(Failure {
            service: Service::Lambda,
            http_status: None,
            code: Some("LambdaNotResponding".into()),
            message: format!(
                "function {name} did not answer a DryRun invocation in {LAMBDA_CALL_TIMEOUT:?}"
            ),
        }),
    }
}

async fn check_bucket(spec: &ReportingSpec, base: &SdkConfig) -> Result<(), Failure> {
    let mut conf = aws_sdk_s3::config::Builder::from(base);
    if let Some(region) = &spec.s3.region {
        conf = conf.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &spec.s3.endpoint {
        conf = conf.endpoint_url(endpoint).force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(conf.build());
    client
        .head_bucket()
        .bucket(&spec.s3.bucket)
        .send()
        .await
        .map_err(|e| failure(Service::S3, &format!("HeadBucket {}", spec.s3.bucket), &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(service: Service, status: Option<u16>, code: Option<&str>, message: &str) -> Failure {
        Failure {
            service,
            http_status: status,
            code: code.map(str::to_string),
            message: message.into(),
        }
    }

    #[test]
    fn failures_map_to_stable_reasons() {
        assert_eq!(
            reason(&f(
                Service::Lambda,
                Some(403),
                Some("AccessDeniedException"),
                "x"
            )),
            "LambdaAccessDenied"
        );
        assert_eq!(
            reason(&f(
                Service::Lambda,
                Some(404),
                Some("ResourceNotFoundException"),
                "x"
            )),
            "LambdaFunctionNotFound"
        );
        assert_eq!(
            reason(&f(Service::S3, Some(404), None, "x")),
            "BucketNotFound"
        );
        assert_eq!(
            reason(&f(Service::S3, Some(403), None, "x")),
            "BucketAccessDenied"
        );
        assert_eq!(
            reason(&f(
                Service::S3,
                None,
                None,
                "dispatch failure: connection refused"
            )),
            "S3Unreachable"
        );
        assert_eq!(
            reason(&f(
                Service::Lambda,
                None,
                None,
                "failed to load credentials"
            )),
            "CredentialsMissing"
        );
        assert_eq!(
            reason(&f(Service::Lambda, Some(500), None, "x")),
            "LambdaCheckFailed"
        );
    }

    #[tokio::test]
    async fn absent_reporting_is_not_configured() {
        let base = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let c = check(None, &base).await;
        assert_eq!(
            (c.status, c.reason.as_str()),
            (crate::conditions::Status::True, "NotConfigured")
        );
    }
}
