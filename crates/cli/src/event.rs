//! `coldstart event`: sample events by SAM's `generate-event` names, from
//! `coldstart_stack::samples`.

use anyhow::anyhow;

use coldstart_stack::samples::{SAMPLES, Sample, find};

use crate::Failure;
use crate::args::EventArgs;

pub(crate) fn event(args: EventArgs) -> Result<(), Failure> {
    let (Some(service), Some(event)) = (&args.service, &args.event) else {
        print!("{}", list(args.service.as_deref()));
        return Ok(());
    };
    let sample = find(service, event).ok_or_else(|| unknown(&format!("{service} {event}")))?;
    let event = sample
        .build(&args.sets)
        .map_err(|e| Failure::usage(anyhow!(e)))?;
    let text = serde_json::to_string_pretty(&event)
        .map_err(|e| Failure::runtime(anyhow!("writing the event: {e}")))?;
    println!("{text}");
    Ok(())
}

/// The sample `SERVICE/EVENT` (for `invoke --event`).
pub(crate) fn sample(name: &str) -> anyhow::Result<&'static Sample> {
    name.split_once('/')
        .and_then(|(service, event)| find(service, event))
        .ok_or_else(|| anyhow!("no sample event {name}: `coldstart event` lists them"))
}

fn unknown(name: &str) -> Failure {
    Failure::usage(anyhow!(
        "no sample event {name}; the samples are:\n{}",
        list(None)
    ))
}

/// The samples (of `service` only, when given), one per line.
fn list(service: Option<&str>) -> String {
    let mut out = String::new();
    for sample in SAMPLES
        .iter()
        .filter(|s| service.is_none_or(|name| s.service == name))
    {
        let name = format!("{} {}", sample.service, sample.event);
        out.push_str(&format!("{name:34} {}\n", sample.description));
    }
    out
}
