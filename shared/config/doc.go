// Package config reads Shardline's settings from flags and environment
// variables (SHARDLINE_, then the flag's name in upper case with dashes as
// underscores; a flag beats its variable) and validates them with one-line
// errors that name the setting, the value and what is allowed. ./poller and
// the Lambda functions share it, so both take exactly the same settings.
// It also lays out each command's help: the command's own flags, then the
// shared settings under Groups' headings, each with its variable.
package config
