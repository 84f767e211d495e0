//! The client's HTTP side: one agent, one token, JSON in and out, and errors that say what
//! went wrong and what to do.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::Value;
use ureq::http::Method;

/// How long a request may take (not a stream of events).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent could not be reached.
    #[error(
        "cannot reach an agent at {url}: {reason} (is one running? start it with `roster agent`, or point --agent / ROSTER_AGENT at it)"
    )]
    Unreachable {
        /// The agent's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The agent refused the request.
    #[error("{status} {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code of the agent's JSON error.
        code: String,
        /// The agent's message.
        message: String,
    },
    /// The agent answered something that is not the JSON it documents.
    #[error("the agent at {url} answered {status} with a body that is not its JSON: {body}")]
    NotJson {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The token file could not be read.
    #[error("cannot read the token file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// An argument could not be used (e.g. `--meta` that is not JSON).
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// The exit code of a command that failed so (see [`super::args::EXIT_CODES`]): 1 not
    /// found or refused, 2 usage, 3 unreachable (or not an agent), 4 unauthorised.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused {
                status: 401 | 403, ..
            } => 4,
            Self::Refused { .. } => 1,
            Self::TokenFile { .. } | Self::Usage(_) => 2,
            Self::Unreachable { .. } | Self::NotJson { .. } => 3,
        }
    }
}

/// A client of one agent.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: ureq::Agent,
    stream: ureq::Agent,
}

impl Client {
    /// A client of the agent at `base` (e.g. `http://127.0.0.1:7480`), sending `token` if
    /// given.
    pub fn new(base: &str, token: Option<String>) -> Self {
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        let stream = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
            stream,
        }
    }

    /// `GET path` (with its query), as JSON.
    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None)
    }

    /// `method path` with a JSON `body`, as JSON (`null` for an empty answer).
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                body.to_string()
            }
            None => String::new(),
        };
        let request = request.body(body).map_err(|e| self.unreachable(&e))?;
        let mut response = self.http.run(request).map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.unreachable(&e))?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| ClientError::NotJson {
                url: url.clone(),
                status,
                body: text.chars().take(200).collect(),
            })?
        };
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(refused(status, &value))
        }
    }

    /// Follows the Server-Sent Events of `path`: calls `connected` once the agent has
    /// accepted the stream (every event after that instant will come), then `event(name,
    /// data)` for each until it returns `false` or the stream ends.
    pub fn events(
        &self,
        path: &str,
        connected: impl FnOnce(),
        mut event: impl FnMut(&str, &str) -> bool,
    ) -> Result<(), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder()
            .method(Method::GET)
            .uri(&url)
            .header("accept", "text/event-stream");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(String::new())
            .map_err(|e| self.unreachable(&e))?;
        let mut response = self.stream.run(request).map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(refused(status, &value));
        }
        connected();
        let reader = BufReader::new(response.into_body().into_reader());
        let (mut name, mut data) = (String::new(), String::new());
        for line in reader.lines() {
            let line = line.map_err(|e| self.unreachable(&e))?;
            if line.is_empty() {
                if !data.is_empty() {
                    let kind = if name.is_empty() { "message" } else { &name };
                    if !event(kind, &data) {
                        return Ok(());
                    }
                }
                name.clear();
                data.clear();
            } else if let Some(value) = line.strip_prefix("event:") {
                value.trim().clone_into(&mut name);
            } else if let Some(value) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        Ok(())
    }

    fn unreachable(&self, error: &dyn std::fmt::Display) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            reason: error.to_string(),
        }
    }
}

/// The error of a refused request, from the agent's `{"error", "message"}` body.
fn refused(status: u16, body: &Value) -> ClientError {
    let text = |field: &str| {
        body.get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    ClientError::Refused {
        status,
        code: text("error"),
        message: text("message"),
    }
}

/// `value` percent-encoded for a query string or a path segment (keys keep their `/`).
pub fn encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char);
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_keeping_their_slashes() {
        assert_eq!(encode("user/1 2", true), "user/1%202");
        assert_eq!(encode("a/b?c", false), "a%2Fb%3Fc");
        assert_eq!(encode("é", true), "%C3%A9");
    }
}
