"""statistics: paired differences, stopping rules and verdicts; numbers in, numbers out."""
