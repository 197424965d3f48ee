// Package wire is Shardline's own codec for the hot Kinesis operations, GetRecords and
// PutRecords, in the service's JSON 1.1 protocol. It plugs into the AWS SDK as a
// smithyhttp.ClientProtocol set per call (see Into), so signing, retries, endpoints,
// middleware and every other operation stay the SDK's; only the bodies of those two
// operations are read and written here.
//
// GetRecords responses are decoded straight into Records whose Data, PartitionKey and
// SequenceNumber share one arena per response: one allocation, however many records, and
// the arena is never reused, so a handler may keep any of them. PutRecords requests are
// written into a reused buffer, and their responses decoded into reused result slices.
//
// Error responses (any status outside 2xx) are handed to the SDK's own protocol, so every
// modeled exception (ExpiredIteratorException, ProvisionedThroughputExceededException, ...)
// is the same value errors.As finds with the SDK's codec. A malformed or truncated success
// body is a *smithy.DeserializationError wrapping a *SyntaxError, as the SDK reports one;
// the decoder never panics on any input (FuzzGetRecords, FuzzPutRecords).
//
// Unknown members are skipped. The decoder is more lenient than the SDK on bodies Kinesis
// never sends: a null member is read as absent, where the SDK fails on a null string or
// number, and content after the top-level object is ignored. FuzzGetRecords and
// FuzzPutRecords hold it to this: whatever the SDK decodes, the codec decodes the same.
package wire
