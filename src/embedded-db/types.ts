export interface EmbeddedDatabase {
  /** Connection string without a database name, e.g. mongodb://127.0.0.1:27017/ */
  uri: string;
  /** Which server is behind the URI, for logs and notes. */
  kind: string;
  port: number;
  stop(): Promise<void>;
}
