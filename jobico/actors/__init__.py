"""The Ray shells: each component's actor, a thin shell handing its plain core (in the package
named for the component) Ray-backed seams; `cluster` is the Ray plumbing they share (names,
options, calls and their errors), `localray` the daemon of the embedded Ray."""
