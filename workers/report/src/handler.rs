//! One invocation: validate → facts → narrative → render → write → response.

use std::path::PathBuf;

use serde::Serialize;
use tracing::Instrument;

use crate::chart;
use crate::error::Error;
use crate::facts::{Facts, History};
use crate::history::HistoryDb;
use crate::keys::ObjectKeys;
use crate::llm::LlmClient;
use crate::markdown;
use crate::narrative::{Narrative, TextSource};
use crate::prompt;
use crate::request::ReportRequest;
use crate::store::{self, Object, S3Clients};

/// What the function returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResponse {
    /// The Markdown report (`s3://bucket/...md`, or a file path in local mode).
    pub report_uri: String,
    /// Every object written: Markdown, JSON, SVG.
    pub objects: Vec<String>,
    /// Who wrote the narrative.
    pub text_source: TextSource,
    /// Why the LLM was not used although configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_error: Option<String>,
}

/// The three rendered objects of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Markdown report.
    pub markdown: String,
    /// Structured facts.
    pub json: String,
    /// Chart.
    pub svg: String,
}

/// Render every object of a report (pure).
pub fn render_all(
    facts: &Facts,
    narrative: &Narrative,
    keys: &ObjectKeys,
) -> Result<Rendered, Error> {
    Ok(Rendered {
        markdown: markdown::render(facts, narrative, keys),
        json: markdown::render_json(facts, narrative, keys)?,
        svg: chart::render(facts),
    })
}

/// Where a handler writes.
#[derive(Debug)]
pub enum Sink {
    /// S3, as the request's `report` says.
    S3(S3Clients),
    /// A local directory (keys become relative paths).
    Dir(PathBuf),
}

/// Options of a [`Handler`].
#[derive(Debug, Clone, Default)]
pub struct HandlerOptions {
    /// S3 endpoint used when the request names none.
    pub s3_endpoint: Option<String>,
    /// S3 credentials; else the environment's (`AWS_ACCESS_KEY_ID`, ...).
    pub s3_credentials: Option<store::StaticCredentials>,
    /// PostgreSQL URL for similar past anomalies.
    pub database_url: Option<String>,
    /// Write under this directory instead of S3.
    pub out_dir: Option<PathBuf>,
}

/// The report hook, shared by every invocation of a runtime process.
#[derive(Debug)]
pub struct Handler {
    sink: Sink,
    history: Option<HistoryDb>,
    llm: Result<LlmClient, String>,
}

impl Handler {
    /// A handler; the database pool connects lazily, the LLM client is built once.
    pub fn new(opts: HandlerOptions) -> Result<Self, Error> {
        let history = opts
            .database_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(HistoryDb::connect_lazy)
            .transpose()?;
        let sink = match opts.out_dir {
            Some(dir) => Sink::Dir(dir),
            None => Sink::S3(S3Clients::new(opts.s3_endpoint, opts.s3_credentials)),
        };
        Ok(Self {
            sink,
            history,
            llm: LlmClient::new().map_err(|e| e.to_string()),
        })
    }

    /// Handle one raw event (the Lambda payload).
    pub async fn handle_value(&self, event: serde_json::Value) -> Result<ReportResponse, Error> {
        let req = ReportRequest::from_value(event)
            .inspect_err(|e| tracing::warn!(error = %e, "rejected request"))?;
        self.handle(&req).await
    }

    /// Produce and write the report of a validated request.
    pub async fn handle(&self, req: &ReportRequest) -> Result<ReportResponse, Error> {
        let span =
            tracing::info_span!("report", anomaly_id = %req.anomaly_id, pipeline = %req.pipeline);
        self.produce(req).instrument(span).await
    }

    async fn produce(&self, req: &ReportRequest) -> Result<ReportResponse, Error> {
        let history = match (&self.history, &req.report.history_table) {
            (Some(db), Some(table)) => db.similar(table, req).await,
            _ => History::NotConfigured,
        };
        let facts = Facts::derive(req, history);
        let narrative = self.narrate(req, &facts).await;
        let keys = ObjectKeys::for_request(req);
        let rendered = render_all(&facts, &narrative, &keys)?;
        let objects = [
            Object {
                key: keys.svg.clone(),
                body: rendered.svg,
                content_type: "image/svg+xml",
            },
            Object {
                key: keys.json.clone(),
                body: rendered.json,
                content_type: "application/json",
            },
            Object {
                key: keys.markdown.clone(),
                body: rendered.markdown,
                content_type: "text/markdown; charset=utf-8",
            },
        ];
        let uris = match &self.sink {
            Sink::S3(s3) => {
                s3.put_all(&req.report, &objects).await?;
                keys.uris()
            }
            Sink::Dir(dir) => {
                let mut paths = store::write_dir(dir, &objects)?;
                paths.reverse(); // Markdown, JSON, SVG, as for S3
                paths.iter().map(|p| p.display().to_string()).collect()
            }
        };
        tracing::info!(text_source = ?narrative.source, uri = %uris.first().map(String::as_str).unwrap_or(""), "report written");
        Ok(ReportResponse {
            report_uri: uris.first().cloned().unwrap_or_default(),
            objects: uris,
            text_source: narrative.source,
            llm_error: narrative.llm_error,
        })
    }

    async fn narrate(&self, req: &ReportRequest, facts: &Facts) -> Narrative {
        let Some(cfg) = &req.report.llm else {
            return Narrative::template(facts, None);
        };
        let client = match &self.llm {
            Ok(c) => c,
            Err(e) => return Narrative::template(facts, Some(e.clone())),
        };
        match client.complete(cfg, &prompt::messages(facts)).await {
            Ok(text) => Narrative {
                source: TextSource::Llm,
                model: Some(cfg.model.clone()),
                text,
                llm_error: None,
            },
            Err((e, attempts)) => {
                tracing::warn!(error = %e, attempts, "LLM unavailable; using the template");
                let why = if attempts > 1 {
                    format!("{e}, {attempts} attempts")
                } else {
                    e.to_string()
                };
                Narrative::template(facts, Some(why))
            }
        }
    }
}
