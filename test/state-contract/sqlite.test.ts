import { sqliteTestState } from '../helpers/state';
import { describeStateContract } from './contract';

describeStateContract('sqlite', sqliteTestState);
