//! The bench's output: a table per vmcore, then each target with its
//! figure and MET or NOT MET. A target that could not be measured says why.

use super::measure::Measured;
use super::reference::Vmcore;
use super::tools::{Found, Tool, FAST_LEVEL};

/// Targets, from the bench's brief.
const TARGET_SPEEDUP_2_THREADS: f64 = 1.8;
const TARGET_RSS_MIB: f64 = 8.0;
const TARGET_RSS_SPREAD_MIB: f64 = 1.0;

pub fn print_table(found: &Found, vmcore: &Vmcore, measured: &[Measured], runs: usize) {
    println!(
        "{}: {:.1} MB, {} pages, {:.1}% all-zero; time (until the output is synced) is the minimum of {runs} run{}, RSS the highest peak",
        vmcore.name,
        vmcore.bytes as f64 / 1e6,
        vmcore.n_pages,
        vmcore.zero_percent(),
        if runs == 1 { "" } else { "s" }
    );
    println!(
        "{:44} {:>8} {:>8} {:>5} {:>9} {:>9} {:>7} {:>8}",
        "command", "time s", "max s", "CPU", "in MB/s", "out MB", "out/in", "RSS MiB"
    );
    for entry in measured {
        let label = entry.tool.label(found.save.as_ref());
        match (
            entry.best(),
            entry.max_wall(),
            entry.output_bytes(),
            entry.max_rss_kib(),
        ) {
            (Some(best), Some(max), Some(output), Some(rss)) => println!(
                "{label:44} {:8.3} {:8.3} {:4.0}% {:9.1} {:9.1} {:6.1}% {:8.1}",
                best.wall.as_secs_f64(),
                max.as_secs_f64(),
                best.cpu_percent(),
                vmcore.bytes as f64 / 1e6 / best.wall.as_secs_f64(),
                output as f64 / 1e6,
                100.0 * output as f64 / vmcore.bytes as f64,
                rss as f64 / 1024.0
            ),
            _ => println!("{label:44} no result"),
        }
        if let Some(error) = &entry.error {
            println!("{:44} failed: {}", "", first_line(error));
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

enum Verdict {
    Met,
    NotMet,
    /// No figure: the reason.
    NotMeasured(String),
    /// A figure with no target.
    Info,
}

/// One line of the targets section.
struct Line {
    what: String,
    figure: String,
    target: String,
    verdict: Verdict,
}

impl Line {
    fn print(&self) {
        let verdict = match &self.verdict {
            Verdict::Met => "MET".to_string(),
            Verdict::NotMet => "NOT MET".to_string(),
            Verdict::NotMeasured(why) => format!("NOT MEASURED: {why}"),
            Verdict::Info => "(no target)".to_string(),
        };
        println!(
            "  {:38} {:42} {:9} {verdict}",
            self.what, self.figure, self.target
        );
    }
}

/// The summary figures of one tool on one vmcore.
#[derive(Clone, Copy)]
struct Figures {
    secs: f64,
    bytes: f64,
    rss_mib: f64,
    /// CPU time over wall time of the fastest run.
    cpu_percent: f64,
}

fn figures(measured: &[Measured], tool: &Tool) -> Result<Figures, String> {
    let entry = measured
        .iter()
        .find(|entry| entry.tool == *tool)
        .ok_or_else(|| format!("{} was not run", tool.label(None)))?;
    match (entry.best(), entry.output_bytes(), entry.max_rss_kib()) {
        (Some(best), Some(bytes), Some(rss)) => Ok(Figures {
            secs: best.wall.as_secs_f64(),
            bytes: bytes as f64,
            rss_mib: rss as f64 / 1024.0,
            cpu_percent: best.cpu_percent(),
        }),
        _ => Err(format!(
            "{} failed: {}",
            tool.label(None),
            first_line(entry.error.as_deref().unwrap_or("no run"))
        )),
    }
}

/// "ours ≤ theirs" for size and time, as two lines.
fn versus(
    what: &str,
    ours: &Result<Figures, String>,
    theirs: &Result<Figures, String>,
) -> Vec<Line> {
    versus_with(what, ours, theirs, true)
}

fn versus_with(
    what: &str,
    ours: &Result<Figures, String>,
    theirs: &Result<Figures, String>,
    has_target: bool,
) -> Vec<Line> {
    let both = match (ours, theirs) {
        (Ok(ours), Ok(theirs)) => Ok((ours, theirs)),
        (Err(why), _) | (_, Err(why)) => Err(why),
    };
    let size = both.map(|(ours, theirs)| (ours.bytes / 1e6, theirs.bytes / 1e6));
    let time = both.map(|(ours, theirs)| (ours.secs, theirs.secs));
    vec![
        ratio_line(&format!("{what}: size"), size, "MB", 1, has_target),
        ratio_line(&format!("{what}: time"), time, "s", 3, has_target),
    ]
}

/// `ours / theirs`, with the target `≤ 1×` when `has_target`.
fn ratio_line(
    what: &str,
    values: Result<(f64, f64), &String>,
    unit: &str,
    decimals: usize,
    has_target: bool,
) -> Line {
    let (figure, verdict) = match values {
        Ok((ours, theirs)) => {
            let ratio = ours / theirs;
            (
                format!("{ratio:.3}× ({ours:.decimals$} / {theirs:.decimals$} {unit})"),
                if has_target {
                    verdict(ratio <= 1.0)
                } else {
                    Verdict::Info
                },
            )
        }
        Err(why) => ("-".to_string(), Verdict::NotMeasured(why.clone())),
    };
    Line {
        what: what.to_string(),
        figure,
        target: if has_target { "≤ 1×" } else { "" }.to_string(),
        verdict,
    }
}

pub fn print_targets(found: &Found, results: &[(Vmcore, Vec<Measured>)]) {
    println!(
        "targets of lifeboat save (ratios are lifeboat / the other tool; time is the minimum, RSS the peak):"
    );
    for note in &found.notes {
        println!("note: {note}");
    }
    let no_save = || "lifeboat has no `save` command".to_string();
    let threads = found
        .save
        .as_ref()
        .and_then(|save| save.has_threads.then_some(1));
    let default_1 = Tool::Lifeboat {
        level: None,
        threads,
    };
    let fast_1 = Tool::Lifeboat {
        level: Some(FAST_LEVEL),
        threads,
    };
    let default_2 = Tool::Lifeboat {
        level: None,
        threads: Some(2),
    };
    let reference_flag = if found.makedumpfile.zstd { 'z' } else { 'c' };
    let reference_name = format!("makedumpfile -{reference_flag}");

    let mut default_rss = Vec::new();
    for (vmcore, measured) in results {
        println!("{}", vmcore.name);
        let lifeboat = |tool: &Tool| match &found.save {
            None => Err(no_save()),
            Some(_) => figures(measured, tool),
        };
        let default = lifeboat(&default_1);
        // Without a level option, or when the fast level is the default, the default is
        // also the fast level.
        let (fast_name, fast) = match &found.save {
            Some(save) if save.has_level && save.default_level != Some(FAST_LEVEL) => {
                (format!("level {FAST_LEVEL}"), lifeboat(&fast_1))
            }
            _ => ("default".to_string(), default.clone()),
        };
        let mut lines = Vec::new();
        lines.extend(versus(
            &format!("default vs {reference_name}"),
            &default,
            &figures(
                measured,
                &Tool::Makedumpfile {
                    flag: reference_flag,
                },
            ),
        ));
        lines.extend(versus(
            &format!("{fast_name} vs makedumpfile -l"),
            &fast,
            &figures(measured, &Tool::Makedumpfile { flag: 'l' }),
        ));
        lines.extend(versus_with(
            "default vs zstd -1 -T1",
            &default,
            &figures(measured, &Tool::Zstd1),
            false,
        ));

        let two_threads = match &found.save {
            None => Err(no_save()),
            Some(save) if !save.has_threads => Err("lifeboat save has no --threads".into()),
            Some(_) => figures(measured, &default_2),
        };
        lines.push(match (&default, &two_threads) {
            (Ok(one), Ok(two)) => {
                let speedup = one.secs / two.secs;
                Line {
                    what: "default, 2 threads vs 1: speedup".into(),
                    // Under 200% CPU, the 2-thread run did not keep two
                    // cores busy: lifeboat, or a busy machine.
                    figure: format!(
                        "{speedup:.2}× ({:.3} s / {:.3} s at {:.0}% CPU)",
                        one.secs, two.secs, two.cpu_percent
                    ),
                    target: format!("≥ {TARGET_SPEEDUP_2_THREADS}×"),
                    verdict: verdict(speedup >= TARGET_SPEEDUP_2_THREADS),
                }
            }
            (Err(why), _) | (_, Err(why)) => not_measured(
                "default, 2 threads vs 1: speedup",
                &format!("≥ {TARGET_SPEEDUP_2_THREADS}×"),
                why,
            ),
        });
        // Two one-thread runs at once show what the two cores give when
        // nothing is shared but the machine (memory bandwidth, a hypervisor
        // that runs both vCPUs on one physical core): the speedup the
        // threads could reach here.
        if let (Ok(one), Ok(two)) = (&default, &two_threads) {
            let speedup = one.secs / two.secs;
            lines.push(match figures(measured, &Tool::LifeboatPair) {
                Ok(pair) => {
                    let ceiling = 2.0 * one.secs / pair.secs;
                    Line {
                        what: "machine: 2 one-thread runs at once".into(),
                        figure: format!(
                            "{ceiling:.2}× ({:.3} s for both); 2 threads get {:.0}% of it",
                            pair.secs,
                            100.0 * speedup / ceiling
                        ),
                        target: String::new(),
                        verdict: Verdict::Info,
                    }
                }
                Err(why) => not_measured("machine: 2 one-thread runs at once", "", &why),
            });
        }
        let rss_what = "default, 1 thread: peak RSS";
        let rss_target = format!("≤ {TARGET_RSS_MIB} MiB");
        lines.push(match &default {
            Ok(one) => {
                default_rss.push((vmcore.name.clone(), one.rss_mib));
                Line {
                    what: rss_what.into(),
                    figure: format!("{:.1} MiB", one.rss_mib),
                    target: rss_target,
                    verdict: verdict(one.rss_mib <= TARGET_RSS_MIB),
                }
            }
            Err(why) => not_measured(rss_what, &rss_target, why),
        });
        if let Ok(two) = &two_threads {
            lines.push(Line {
                what: "default, 2 threads: peak RSS".into(),
                figure: format!("{:.1} MiB", two.rss_mib),
                target: String::new(),
                verdict: Verdict::Info,
            });
        }
        for line in &lines {
            line.print();
        }
    }

    println!("across vmcores");
    let what = "default, 1 thread: peak RSS spread";
    let target = format!("≤ {TARGET_RSS_SPREAD_MIB} MiB");
    let line = match default_rss.as_slice() {
        [(first_name, first), (second_name, second), ..] => {
            let spread = (first - second).abs();
            Line {
                what: what.into(),
                figure: format!(
                    "{spread:.2} MiB ({first_name} {first:.1}, {second_name} {second:.1})"
                ),
                target,
                verdict: verdict(spread <= TARGET_RSS_SPREAD_MIB),
            }
        }
        _ if results.len() < 2 => not_measured(what, &target, "needs both vmcores (not --quick)"),
        _ => not_measured(what, &target, "lifeboat's RSS is missing for a vmcore"),
    };
    line.print();
}

fn verdict(met: bool) -> Verdict {
    if met {
        Verdict::Met
    } else {
        Verdict::NotMet
    }
}

fn not_measured(what: &str, target: &str, why: &str) -> Line {
    Line {
        what: what.into(),
        figure: "-".into(),
        target: target.into(),
        verdict: Verdict::NotMeasured(why.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(secs: f64, megabytes: f64) -> Result<Figures, String> {
        Ok(Figures {
            secs,
            bytes: megabytes * 1e6,
            rss_mib: 5.0,
            cpu_percent: 100.0,
        })
    }

    #[test]
    fn smaller_and_faster_meets_a_versus_target() {
        let lines = versus("x", &figures(1.0, 400.0), &figures(2.0, 500.0));
        assert!(matches!(lines[0].verdict, Verdict::Met));
        assert_eq!(lines[0].figure, "0.800× (400.0 / 500.0 MB)");
        assert!(matches!(lines[1].verdict, Verdict::Met));
        let lines = versus("x", &figures(3.0, 400.0), &figures(2.0, 500.0));
        assert!(matches!(lines[1].verdict, Verdict::NotMet));
    }

    #[test]
    fn a_missing_figure_is_not_measured_with_its_reason() {
        let lines = versus("x", &Err("no save".into()), &figures(2.0, 500.0));
        assert!(matches!(&lines[0].verdict, Verdict::NotMeasured(why) if why == "no save"));
    }
}
