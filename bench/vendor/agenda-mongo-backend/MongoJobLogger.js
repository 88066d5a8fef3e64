import debug from 'debug';
const log = debug('agenda:mongo:logger');
/**
 * MongoDB implementation of JobLogger.
 * Stores job lifecycle events in a dedicated MongoDB collection.
 *
 * @example
 * ```typescript
 * // Via backend (automatic connection sharing):
 * import { MongoBackend } from '@agendajs/mongo-backend';
 *
 * const backend = new MongoBackend({
 *   mongo: db,
 *   logging: true // enables MongoJobLogger with 'agenda_logs' collection
 * });
 *
 * // Standalone (e.g., log to Mongo while using Postgres for storage):
 * import { MongoJobLogger } from '@agendajs/mongo-backend';
 *
 * const logger = new MongoJobLogger({ db: existingDb });
 * const agenda = new Agenda({
 *   backend: new PostgresBackend({ connectionString: '...' }),
 *   logging: logger
 * });
 * ```
 */
export class MongoJobLogger {
    collection;
    collectionName;
    initialized = false;
    constructor(options) {
        if (typeof options === 'string') {
            // Legacy: constructor(collectionName)
            this.collectionName = options;
        }
        else {
            this.collectionName = options?.collectionName ?? 'agenda_logs';
            if (options?.db) {
                this.collection = options.db.collection(this.collectionName);
            }
        }
    }
    /**
     * Set the database instance and initialize the collection.
     * Called by MongoBackend after the repository connects,
     * or automatically when a db is provided in the constructor.
     */
    async setDb(db) {
        this.collection = db.collection(this.collectionName);
        await this.ensureIndexes();
    }
    async ensureIndexes() {
        if (this.initialized || !this.collection)
            return;
        this.initialized = true;
        log('creating indexes for %s collection', this.collectionName);
        await this.collection.createIndex({ timestamp: -1 }, { name: 'agenda_logs_timestamp_idx' });
        await this.collection.createIndex({ jobId: 1, timestamp: -1 }, { name: 'agenda_logs_job_id_idx' });
        await this.collection.createIndex({ jobName: 1, timestamp: -1 }, { name: 'agenda_logs_job_name_idx' });
        log('indexes created for %s collection', this.collectionName);
    }
    async log(entry) {
        if (!this.collection) {
            log('collection not initialized, skipping log entry');
            return;
        }
        await this.ensureIndexes();
        await this.collection.insertOne({ ...entry });
    }
    async getLogs(query) {
        if (!this.collection) {
            return { entries: [], total: 0 };
        }
        const filter = this.buildFilter(query);
        const sort = { timestamp: query?.sort === 'asc' ? 1 : -1 };
        const limit = query?.limit ?? 50;
        const offset = query?.offset ?? 0;
        const [entries, total] = await Promise.all([
            this.collection
                .find(filter)
                .sort(sort)
                .skip(offset)
                .limit(limit)
                .toArray()
                .then(docs => docs.map(doc => ({
                _id: doc._id.toHexString(),
                timestamp: doc.timestamp,
                level: doc.level,
                event: doc.event,
                jobId: doc.jobId,
                jobName: doc.jobName,
                message: doc.message,
                duration: doc.duration,
                error: doc.error,
                failCount: doc.failCount,
                retryDelay: doc.retryDelay,
                retryAttempt: doc.retryAttempt,
                agendaName: doc.agendaName,
                meta: doc.meta
            }))),
            this.collection.countDocuments(filter)
        ]);
        return { entries, total };
    }
    async clearLogs(query) {
        if (!this.collection) {
            return 0;
        }
        const filter = this.buildFilter(query);
        const result = await this.collection.deleteMany(filter);
        return result.deletedCount;
    }
    buildFilter(query) {
        if (!query)
            return {};
        const filter = {};
        if (query.jobId) {
            filter.jobId = query.jobId;
        }
        if (query.jobName) {
            filter.jobName = query.jobName;
        }
        if (query.level) {
            filter.level = Array.isArray(query.level)
                ? { $in: query.level }
                : query.level;
        }
        if (query.event) {
            filter.event = Array.isArray(query.event)
                ? { $in: query.event }
                : query.event;
        }
        if (query.from || query.to) {
            const timestampFilter = {};
            if (query.from)
                timestampFilter.$gte = query.from;
            if (query.to)
                timestampFilter.$lte = query.to;
            filter.timestamp = timestampFilter;
        }
        return filter;
    }
}
