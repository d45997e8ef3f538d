"""Best of N: the XComposer-style selector that ranks generated candidates."""
