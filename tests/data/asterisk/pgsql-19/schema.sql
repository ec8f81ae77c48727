

CREATE TABLE public.cdr (
    accountcode character varying(80),
    src character varying(80),
    dst character varying(80),
    dcontext character varying(80),
    clid character varying(80),
    channel character varying(80),
    dstchannel character varying(80),
    lastapp character varying(80),
    lastdata character varying(80),
    start timestamp without time zone,
    answer timestamp without time zone,
    "end" timestamp without time zone,
    duration integer,
    billsec integer,
    disposition character varying(45),
    amaflags character varying(45),
    userfield character varying(256),
    uniqueid character varying(150),
    linkedid character varying(150),
    peeraccount character varying(80),
    sequence integer
);

CREATE TABLE public.cel (
    id bigint NOT NULL,
    eventtype character varying(30),
    eventtime timestamp without time zone,
    userdeftype character varying(255),
    cid_name character varying(80),
    cid_num character varying(80),
    cid_ani character varying(80),
    cid_rdnis character varying(80),
    cid_dnid character varying(80),
    exten character varying(80),
    context character varying(80),
    channame character varying(80),
    appname character varying(80),
    appdata character varying(512),
    amaflags integer,
    accountcode character varying(80),
    peeraccount character varying(80),
    uniqueid character varying(150),
    linkedid character varying(150),
    userfield character varying(255),
    peer character varying(80),
    extra text
);

CREATE SEQUENCE public.cel_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.cel_id_seq OWNED BY public.cel.id;

CREATE TABLE public.queue_log (
    id bigint NOT NULL,
    "time" timestamp without time zone,
    callid character varying(80),
    queuename character varying(256),
    agent character varying(80),
    event character varying(32),
    data1 character varying(100),
    data2 character varying(100),
    data3 character varying(100),
    data4 character varying(100),
    data5 character varying(100)
);

CREATE SEQUENCE public.queue_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.queue_log_id_seq OWNED BY public.queue_log.id;

ALTER TABLE ONLY public.cel ALTER COLUMN id SET DEFAULT nextval('public.cel_id_seq'::regclass);

ALTER TABLE ONLY public.queue_log ALTER COLUMN id SET DEFAULT nextval('public.queue_log_id_seq'::regclass);

ALTER TABLE ONLY public.cel
    ADD CONSTRAINT cel_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.queue_log
    ADD CONSTRAINT queue_log_pkey PRIMARY KEY (id);


