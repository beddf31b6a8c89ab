// Package terminal tells whether an output is a terminal (without
// golang.org/x/term: an ioctl on Linux, the character-device bit
// elsewhere) and keeps one status line redrawn in place at the bottom of
// a terminal while other lines (logs, a handler's output) scroll above
// it. `poller run` uses it for its live view, `poller status -watch` to
// choose between redrawing the screen and reprinting, and package config
// to choose the log format.
package terminal
