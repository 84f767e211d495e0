//! A small blocking HTTP client for the agents' API: every status is an answer (no error
//! for 4xx/5xx), and a request that cannot be sent or times out is [`Reply::Failed`].

use std::time::Duration;

use serde_json::Value;

/// The answer to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The agent answered: status and JSON body (`null` when empty or not JSON).
    Answered(u16, Value),
    /// No answer: refused, reset, timed out (the outcome of a write is unknown).
    Failed(String),
}

impl Reply {
    /// The status, when the agent answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered(status, _) => Some(*status),
            Self::Failed(_) => None,
        }
    }

    /// The body of a 2xx answer.
    pub fn ok(&self) -> Option<&Value> {
        match self {
            Self::Answered(status, body) if (200..300).contains(status) => Some(body),
            _ => None,
        }
    }

    /// The error code of a refusal (`name_taken`, `session_expired`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Answered(_, body) => body.get("error").and_then(Value::as_str),
            Self::Failed(_) => None,
        }
    }

    /// One word for the history: `200`, `409 name_taken`, `failed: ...`.
    pub fn summary(&self) -> String {
        match self {
            Self::Answered(status, _) => match self.code() {
                Some(code) => format!("{status} {code}"),
                None => status.to_string(),
            },
            Self::Failed(error) => format!("failed: {error}"),
        }
    }
}

/// A client with the cluster's write token and a per-request timeout.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    token: String,
}

impl Client {
    /// A client that sends `token` and gives up after `timeout`.
    pub fn new(token: &str, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            agent,
            token: token.to_owned(),
        }
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> Reply {
        self.send("GET", url, None)
    }

    /// `PUT url` with an optional JSON body.
    pub fn put(&self, url: &str, body: Option<&Value>) -> Reply {
        self.send("PUT", url, body)
    }

    /// `POST url` with a JSON body.
    pub fn post(&self, url: &str, body: &Value) -> Reply {
        self.send("POST", url, Some(body))
    }

    /// `DELETE url`.
    pub fn delete(&self, url: &str) -> Reply {
        self.send("DELETE", url, None)
    }

    fn send(&self, method: &str, url: &str, body: Option<&Value>) -> Reply {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let text = body.map(Value::to_string).unwrap_or_default();
        let request = match request.body(text) {
            Ok(request) => request,
            Err(error) => return Reply::Failed(error.to_string()),
        };
        match self.agent.run(request) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                let value = serde_json::from_str(&text).unwrap_or(Value::Null);
                Reply::Answered(status, value)
            }
            Err(error) => Reply::Failed(error.to_string()),
        }
    }
}
