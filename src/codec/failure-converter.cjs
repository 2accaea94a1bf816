// Failure messages and stack traces name VMs, DNs and image paths. Encoding them as a
// payload (encodeCommonAttributes) lets the payload codec encrypt them like the rest.
// Loaded by path (DataConverter.failureConverterPath): the SDK require()s it in clients
// and workers and bundles it into the workflow sandbox, hence plain CommonJS.
/* global require, exports */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
