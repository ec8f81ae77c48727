"""Closing the loop by voice (issue 22): a phone case closed for a citizen with no e-mail gets a
call back that reads the resolution and asks whether it is fixed; 2 reopens the case."""
