//! Pids as the API spells them, `<incarnation.serial>` with the incarnation in 16 hex
//! digits (as `roster::Pid` displays them), parsed back.

use roster::Pid;

use crate::errors::ApiError;

/// Parses `<0123456789abcdef.17>` ([`Pid`]'s `FromStr`).
///
/// # Errors
///
/// 400 `bad_pid` for anything else.
pub fn parse_pid(text: &str) -> Result<Pid, ApiError> {
    text.parse::<Pid>().map_err(|_| {
        ApiError::bad_request(
            "bad_pid",
            format!(
                "{text:?} is not a pid: give one as the API shows them, e.g. <5f0c2a9e3b1d7c44.17>"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use roster::Incarnation;

    use super::*;

    #[test]
    fn a_pid_round_trips_and_bad_text_is_refused() {
        let pid = Pid::new(Incarnation::new(0x5f0c_2a9e_3b1d_7c44), 17);
        assert_eq!(parse_pid(&pid.to_string()).unwrap(), pid);
        for bad in [
            "",
            "<>",
            "5f0c2a9e3b1d7c44.17",
            "<5f0c.17>",
            "<5f0c2a9e3b1d7c44.x>",
        ] {
            assert_eq!(parse_pid(bad).unwrap_err().code(), "bad_pid", "{bad}");
        }
    }
}
