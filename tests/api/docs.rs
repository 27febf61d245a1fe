//! The operations guide's configuration table is checked against `authd serve --help`, and
//! the README's table of refusal reasons against `authd_client::reason::ALL`.
use std::collections::{BTreeMap, BTreeSet};

/// (flag, env var, default) for every option of `authd serve`, read from its help.
fn help_options() -> BTreeMap<String, (String, Option<String>)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut opts = BTreeMap::new();
    let mut flag: Option<String> = None;
    for line in help.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("--") {
            flag = Some(format!("--{}", rest.split_whitespace().next().unwrap()));
            continue;
        }
        let (Some(f), Some(env_at)) = (&flag, t.find("[env: ")) else {
            continue;
        };
        let env: String = t[env_at + 6..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let default = t
            .find("[default: ")
            .map(|at| t[at + 10..].split(']').next().unwrap().to_owned());
        opts.insert(f.clone(), (env, default));
        flag = None;
    }
    opts
}

#[test]
fn operations_guide_lists_every_setting_with_its_env_var_and_default() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let opts = help_options();
    assert!(opts.len() >= 20, "help parsed: {opts:?}");
    for (flag, (env, default)) in &opts {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{flag}` |")))
            .unwrap_or_else(|| panic!("docs/operations.md has no row for {flag}"));
        assert!(
            row.contains(&format!("`{env}`")),
            "{flag}: env {env} not in {row}"
        );
        if let Some(d) = default {
            assert!(
                row.contains(&format!("`{d}`")),
                "{flag}: default {d} not in {row}"
            );
        }
    }
    // And nothing documented that the server does not have.
    for line in doc.lines().filter(|l| l.starts_with("| `--")) {
        let flag = line.split('`').nth(1).unwrap();
        assert!(
            opts.contains_key(flag),
            "docs/operations.md documents unknown {flag}"
        );
    }
}

#[test]
fn readme_settings_table_names_only_real_env_vars() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let envs: Vec<String> = help_options().into_values().map(|(e, _)| e).collect();
    let section = readme
        .split("## Settings")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    for word in section.split('`').filter(|w| w.starts_with("AUTHD_")) {
        assert!(
            envs.iter().any(|e| e == word),
            "README names {word}, which `authd serve` lacks"
        );
    }
}

/// The reasons in the first column of the README's refusal table (backticked, one or more
/// per cell).
fn readme_reasons() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("A refusal carries a readable message")
        .nth(1)
        .expect("README has the refusal section")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        // The header row and the separator.
        .skip(2);
    let mut reasons = Vec::new();
    for row in table {
        let first = row.split('|').nth(1).unwrap();
        let cell: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
        assert!(!cell.is_empty(), "no reason in README row {row}");
        reasons.extend(cell.into_iter().map(str::to_owned));
    }
    reasons
}

#[test]
fn readme_reason_table_lists_exactly_the_reasons_in_the_code() {
    let documented = readme_reasons();
    let unique: BTreeSet<&str> = documented.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), documented.len(), "a reason is listed twice");
    let code: BTreeSet<&str> = authd_client::reason::ALL.iter().copied().collect();
    assert_eq!(
        unique.difference(&code).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "in the README, not in authd_client::reason::ALL"
    );
    assert_eq!(
        code.difference(&unique).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "in authd_client::reason::ALL, not in the README's table"
    );
}
