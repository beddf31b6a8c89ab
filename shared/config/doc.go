// Package config reads Shardline's settings from flags and environment
// variables (upper case, dashes become underscores; a flag beats its
// variable) and validates them with one-line errors that name the setting,
// the value and what is allowed. ./poller and the Lambda functions share it,
// so both take exactly the same settings.
package config
