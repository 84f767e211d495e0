//! The demo's closing report: a table of the nodes (users, channel memberships, events
//! served, messages read) and a table of what happened, each check marked held or not.

use crate::cli::table::Table;

/// One node's line.
#[derive(Debug, Clone)]
pub struct NodeLine {
    /// The node.
    pub name: String,
    /// `user/` names held by its processes at the end.
    pub users: usize,
    /// Channel memberships of its processes at the end.
    pub memberships: usize,
    /// Registry events its `/api/events` stream served (all its incarnations).
    pub events: u64,
    /// Messages its users read.
    pub delivered: u64,
}

/// One line of what happened: a figure, and whether what it checks held (`None` when it
/// is only a figure).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What it is about.
    pub what: String,
    /// What was seen.
    pub seen: String,
    /// Whether the check held.
    pub held: Option<bool>,
}

/// The report.
#[derive(Debug, Default)]
pub struct Summary {
    /// The nodes.
    pub nodes: Vec<NodeLine>,
    /// What happened.
    pub outcomes: Vec<Outcome>,
}

impl Summary {
    /// Adds a figure.
    pub fn figure(&mut self, what: &str, seen: String) {
        self.outcomes.push(Outcome {
            what: what.to_owned(),
            seen,
            held: None,
        });
    }

    /// Adds a check.
    pub fn check(&mut self, what: &str, seen: String, held: bool) {
        self.outcomes.push(Outcome {
            what: what.to_owned(),
            seen,
            held: Some(held),
        });
    }

    /// Whether every check held.
    pub fn all_held(&self) -> bool {
        self.outcomes.iter().all(|o| o.held != Some(false))
    }

    /// The two tables as text.
    pub fn render(&self) -> String {
        let mut nodes = Table::new(&["NODE", "USERS", "MEMBERSHIPS", "EVENTS", "DELIVERED"]);
        for node in &self.nodes {
            nodes.row(vec![
                node.name.clone(),
                node.users.to_string(),
                node.memberships.to_string(),
                node.events.to_string(),
                node.delivered.to_string(),
            ]);
        }
        let mut outcomes = Table::new(&["", "WHAT", "SEEN"]);
        for outcome in &self.outcomes {
            let mark = match outcome.held {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "",
            };
            outcomes.row(vec![
                mark.to_owned(),
                outcome.what.clone(),
                outcome.seen.clone(),
            ]);
        }
        format!("{}\n{}", nodes.render(), outcomes.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_failed_is_marked_and_fails_the_summary() {
        let mut summary = Summary::default();
        summary.figure("messages posted", "10".to_owned());
        summary.check("converged", "35 ms".to_owned(), true);
        assert!(summary.all_held());
        summary.check("one owner", "two".to_owned(), false);
        assert!(!summary.all_held());
        let text = summary.render();
        assert!(text.contains("✓  converged"), "{text}");
        assert!(text.contains("✗  one owner"), "{text}");
    }
}
