// The two value formats a launch form takes, from the same module the service reads them with
// (formats/: pure, shared by the service and the dashboard), so a value the form accepts is one the service accepts.
export { parseDuration } from '../../../formats/duration.ts';
export { parseQuantity } from '../../../formats/quantity.ts';
