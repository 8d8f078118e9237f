//! ISO-8601 durations as written in annotations: `PT30M`, `PT1H`, `P1D`, `P1DT12H`, `PT90S`.

use chrono::Duration;

/// Parses a positive ISO-8601 duration made of days, hours, minutes and seconds.
///
/// # Errors
/// A message saying what is wrong, for the annotation error.
pub fn parse_iso8601(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        Err(format!(
            "`{s}` is not a positive ISO-8601 duration ({why}); write e.g. PT30M, PT1H or P1DT12H"
        ))
    };
    let Some(rest) = s.strip_prefix('P') else {
        return bad("it must start with P");
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = Duration::zero();
    let mut any = false;
    let mut add = |part: &str, units: &[(char, i64)]| -> Result<(), String> {
        let mut num = String::new();
        let mut last_unit = None;
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let Some(pos) = units.iter().position(|(u, _)| *u == c) else {
                return Err(format!(
                    "unit `{c}` is not allowed here (years and months have no fixed length)"
                ));
            };
            if last_unit.is_some_and(|l| pos <= l) || num.is_empty() {
                return Err("units must each appear once, in order, after a number".into());
            }
            let n: i64 = num.parse().map_err(|_| "number too large".to_string())?;
            let secs = n.checked_mul(units[pos].1).ok_or("number too large")?;
            total = total
                .checked_add(&Duration::try_seconds(secs).ok_or("number too large")?)
                .ok_or("number too large")?;
            num.clear();
            last_unit = Some(pos);
            any = true;
        }
        if !num.is_empty() {
            return Err("a number has no unit".into());
        }
        Ok(())
    };
    if let Err(why) = add(date, &[('D', 86_400)]) {
        return bad(&why);
    }
    if let Some(t) = time {
        if t.is_empty() {
            return bad("nothing after T");
        }
        if let Err(why) = add(t, &[('H', 3_600), ('M', 60), ('S', 1)]) {
            return bad(&why);
        }
    }
    if !any {
        return bad("no amount");
    }
    if total <= Duration::zero() {
        return bad("it must be longer than zero");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_days_hours_minutes_seconds() {
        assert_eq!(parse_iso8601("PT30M"), Ok(Duration::minutes(30)));
        assert_eq!(parse_iso8601("PT1H"), Ok(Duration::hours(1)));
        assert_eq!(parse_iso8601("P1D"), Ok(Duration::days(1)));
        assert_eq!(
            parse_iso8601("P1DT12H30M15S"),
            Ok(Duration::seconds(86_400 + 12 * 3600 + 30 * 60 + 15))
        );
        assert_eq!(parse_iso8601("PT90S"), Ok(Duration::seconds(90)));
    }

    #[test]
    fn rejects_what_is_not_a_positive_fixed_duration() {
        for bad in [
            "", "forever", "1H", "PT", "P", "PT0S", "P0D", "P1M", "P1Y", "PT1H1H", "PT30M1H", "PT1", "PTH", "-PT1H",
            "P1W",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad} accepted");
        }
    }
}
