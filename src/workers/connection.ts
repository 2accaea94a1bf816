export { connectWorker, dataConverter } from '../temporal/connect';
