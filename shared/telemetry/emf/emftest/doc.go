// Package emftest checks CloudWatch Embedded Metric Format lines for tests
// (those of package emf and of the scheduled poller function): Validate
// holds a line to a JSON schema of the specification
// (testdata/emf-schema.json, checked by a small JSON-schema checker here)
// and to the rules on target members that a schema cannot express; Find
// picks the EMF lines out of a process's output. Only tests import it.
package emftest
