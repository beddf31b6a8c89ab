// Package samtemplate reads the Lambda functions of an AWS SAM template as
// `sam build` and `sam local` see them: each AWS::Serverless::Function's
// logical id, code (CodeUri, Handler, Runtime, Architectures, Metadata's
// BuildMethod and GoPackage), Timeout, MemorySize, its Environment
// Variables resolved against the parameters' defaults (or the values a
// caller gives, as --parameter-overrides does) and its Events.
//
// It is the one reader of template.yaml that Shardline's tools and tests
// share: `standins invoke` and `start-lambda` build and run the functions
// it finds, and functions/poller's TestTemplateAgrees checks every one of
// them, so that adding a function to the template needs no list in code.
// The root Makefile finds the same functions with awk, and that test
// checks that the two agree.
//
// It is not a YAML parser. It reads the block layout SAM templates are
// written in (mappings indented by spaces, one key per line, comments,
// folded and literal scalars) and resolves one-line values made of
// CloudFormation's short-form intrinsics: !Ref, !Sub with a string, !If,
// !Equals, !Not, !And, !Or and !Condition, in flow style and nested
// ("!If [HasQueue, !Ref Queue, !If [HasTopic, !Ref Topic, \"\"]]"). A
// value written any other way (a multi-line !If, Fn::GetAtt, !Join, a
// resource's !Ref) is listed in Function.Unresolved instead of guessed.
//
// Used by cmd/standins and tests only; nothing on the data path imports it.
package samtemplate
